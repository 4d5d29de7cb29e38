#!/bin/sh
# 100,001 keys in one file: one more than the limit.
awk 'BEGIN { print "name: bad-case"; for (i = 1; i < 100001; i++) printf "k%d: v\n", i }' >recipe.yaml
