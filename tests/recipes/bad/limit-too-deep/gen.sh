#!/bin/sh
# Flow sequences nested 70 deep under 'templates'.
awk 'BEGIN { printf "name: bad-case\ntemplates: "; for (i = 0; i < 70; i++) printf "["; print "" }' >recipe.yaml
