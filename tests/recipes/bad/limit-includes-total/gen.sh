#!/bin/sh
# One 3 MiB fragment included twice: the files together pass 4 MiB.
{ echo 'name: bad-case'; head -c 3145728 /dev/zero | tr '\0' '#'; } >big.yaml
{ printf 'include:\n  - big.yaml\n  - big.yaml\n'; cat <<'BASE'
name: bad-case
version: qVSA-1.0
disk:
  size: 64M
personalization:
  platform_url: https://platform.example/
targets: [kvm]
BASE
} >recipe.yaml
