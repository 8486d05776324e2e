#!/bin/sh
# flood.sh [BYTES]: writes BYTES (default 4 MiB) of "x" to stdout and of
# "y" to stderr, far more than an output bound, then the reflex-output
# line "flooded=BYTES".
n=${1:-4194304}
head -c "$n" /dev/zero | tr '\0' x
printf '\n'
head -c "$n" /dev/zero | tr '\0' y >&2
printf 'reflex-output: flooded=%s\n' "$n"
