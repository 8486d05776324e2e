#!/bin/sh
# args.sh [ARG...]: prints each argument on a line of its own, bracketed
# ("[arg]"), as it arrived: nothing in it is interpreted.
for a in "$@"; do
	printf '[%s]\n' "$a"
done
