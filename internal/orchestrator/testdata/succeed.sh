#!/bin/sh
# succeed.sh [NAME]: prints to stdout and stderr, sets the named output
# "result" with a reflex-output line, and exits 0.
printf 'succeeded%s\n' "${1:+ for $1}"
printf 'a note on stderr\n' >&2
printf 'reflex-output: result=ok\n'
exit 0
