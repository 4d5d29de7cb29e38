#!/bin/sh
# 90,000 targets then a duplicate of the sixth.
{ cat <<'BASE'
name: bad-case
version: qVSA-1.0
disk:
  size: 64M
personalization:
  platform_url: https://platform.example/
targets:
BASE
awk 'BEGIN { for (i = 0; i < 90000; i++) printf "  - t%d\n", i; print "  - t5" }'; } >recipe.yaml
