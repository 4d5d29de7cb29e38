/* judge_boot over recorded status lines: what verify concludes from the
 * agent's QVSA-STATUS line when nothing reached the platform stub. */
#include <criterion/criterion.h>
#include <string.h>

#include "console.h"
#include "err.h"
#include "platform_test.h"
#include "stub.h"
#include "verify.h"
#include "verify_run.h"

/* Judge one boot whose console showed log; the verdict's reason, or "" on a pass. */
static void judge(const char *log, char *ret_reason, size_t len)
{
	struct console *con = console_new();
	console_feed(con, log, strlen(log));
	struct stub_config cfg = {.expected_code = "12345678"};
	struct stub *s = NULL;
	cr_assert_eq(stub_start(&cfg, &s), 0, "%s", err_msg());
	struct platform *p = pt_prepare("nocloud");
	struct verify_opts o = {.perscode = "12345678", .accel = "tcg"};
	struct verify_result res = {0};
	struct run r = {.o = &o, .res = &res, .con = con, .stub = s, .plat = p, .pops = platform_find("nocloud"),
			.version = "qVSA-1.0", .tname = "kvm"};
	int rc = judge_boot(&r, VM_END_POWEROFF, 60);
	cr_assert_eq(rc, r.failed ? -1 : 0);
	snprintf(ret_reason, len, "%s", r.reason);
	platform_stop(p);
	stub_stop(s);
	console_free(con);
}

Test(judge, cut_off_status_line_is_a_clear_failure, .init = pt_setup, .fini = pt_teardown)
{
	char why[1024];
	judge("QVSA-AGENT: starting\r\nQVSA-STATUS: {\"status\":\"success\",\"channel\":\"noclo\r\nreboot: Power down\r\n",
	      why, sizeof(why));
	cr_expect(strstr(why, "QVSA-STATUS line is not JSON (unexpected end of input at byte 36)"), "%s", why);
	cr_expect(strstr(why, "{\"status\":\"success\",\"channel\":\"noclo"), "the line is shown: %s", why);
	cr_expect_null(err_msg(), "the run took the error over");
}

Test(judge, garbage_and_wrong_shapes, .init = pt_setup, .fini = pt_teardown)
{
	char why[1024];
	judge("QVSA-STATUS: \x01\x02garbage}}\r\n", why, sizeof(why));
	cr_expect(strstr(why, "QVSA-STATUS line is not JSON"), "%s", why);
	judge("QVSA-STATUS: [\"success\"]\r\n", why, sizeof(why));
	cr_expect(strstr(why, "QVSA-STATUS line is not a JSON object"), "%s", why);
	judge("QVSA-STATUS: {\"status\":true}\r\n", why, sizeof(why));
	cr_expect(strstr(why, "no \"status\" string"), "%s", why);
}

Test(judge, failure_status_gives_its_reason, .init = pt_setup, .fini = pt_teardown)
{
	char why[1024];
	judge("QVSA-STATUS: {\"status\":\"failure\",\"stage\":\"platform\",\"channel\":\"nocloud\","
	      "\"reason\":\"no route to \\\"platform\\\"\"}\r\n",
	      why, sizeof(why));
	cr_expect_str_eq(why, "agent reported status 'failure': no route to \"platform\"");
	/* Without a reason the line itself explains. */
	judge("QVSA-STATUS: {\"status\":\"failure\"}\r\n", why, sizeof(why));
	cr_expect_str_eq(why, "agent reported status 'failure': {\"status\":\"failure\"}");
	/* Success claimed, but the stub heard nothing: the status line is not believed. */
	judge("QVSA-STATUS: {\"status\":\"success\",\"channel\":\"nocloud\",\"version\":\"qVSA-1.0\"}\r\n", why,
	      sizeof(why));
	cr_expect(strstr(why, "platform stub received no request"), "%s", why);
}
