/* Hidden commands that write out what qvsa hands cloud-init, without a
 * build or a boot, so that cloud-init's own validator can read it
 * (tests/integration/cloudinit-schema.sh):
 *   qvsa __seed PLATFORM DIR    a platform's seed, as verify makes it
 *   qvsa __datasource TARGET    a target's 90-qvsa-datasource.cfg, as build writes it */
#ifndef QVSA_CLOUDINIT_DUMP_H
#define QVSA_CLOUDINIT_DUMP_H

/* Into DIR (made if need be): "user-data", the document verify hands the
 * platform; the platform's media as verify writes them (their name is
 * printed as "media FILE"); and, for a metadata service, the body it
 * answers at its user-data address when asked as the guest asks,
 * "served-user-data" (printed as "served FILE"). 0, or -1 with an error
 * recorded. */
int cloudinit_dump_seed(const char *platform, const char *dir);

/* Write target's datasource file (all its bytes, padding included) to stdout. */
int cloudinit_dump_datasource(const char *datadir, const char *target);

#endif
