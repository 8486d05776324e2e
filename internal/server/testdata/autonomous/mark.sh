#!/bin/sh
# mark.sh WORD: records WORD (a remediation or its rollback ran).
printf '%s\n' "$1" >> "$REFLEX_TEST_MARKS"
printf '%s done\n' "$1"
