#!/bin/sh
# fail.sh: prints a line to stdout and an error to stderr, and exits 3.
printf 'partial output\n'
printf 'failing on purpose\n' >&2
exit 3
