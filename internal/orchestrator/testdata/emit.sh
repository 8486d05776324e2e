#!/bin/sh
# emit.sh KEY VALUE: sets the named output KEY to VALUE and exits 0.
printf 'reflex-output: %s=%s\n' "$1" "$2"
