/* The order in which verify starts its boots (verify_boot.c): the longest
 * first, so that the last to end are short ones and both slots stay busy. */
#include <criterion/criterion.h>

#include "verify_run.h"

Test(verify_boot, uefi_and_console_boots_weigh_more)
{
	unsigned plain = verify_boot_weight(false, false), console = verify_boot_weight(false, true),
		 uefi = verify_boot_weight(true, false), both = verify_boot_weight(true, true);
	cr_expect_gt(console, plain);
	cr_expect_gt(uefi, console, "OVMF costs more than the console's prompts");
	cr_expect_gt(both, uefi);
}
