#!/bin/sh
# 80,000 keys then a duplicate: took 11 s with pairwise checks.
{ cat <<'BASE'
name: bad-case
version: qVSA-1.0
disk:
  size: 64M
personalization:
  platform_url: https://platform.example/
targets: [kvm]
BASE
awk 'BEGIN { for (i = 0; i < 80000; i++) printf "k%d: v\n", i; print "k0: again" }'; } >recipe.yaml
