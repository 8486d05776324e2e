#!/bin/sh
# mark.sh FILE TAG [EXIT]: appends the line TAG to FILE (one line per
# run, so that a file shows which runs happened, in which order, and how
# often), sets the named output "tag" to TAG, and exits EXIT (default 0).
printf '%s\n' "$2" >>"$1"
printf 'marked %s\n' "$2"
printf 'reflex-output: tag=%s\n' "$2"
exit "${3:-0}"
