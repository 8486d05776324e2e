#!/bin/sh
# linger.sh [PIDFILE]: leaves a background child that sleeps with stdout
# and stderr still open, writes the child's pid to PIDFILE, and exits 0 at
# once.
sleep 300 &
if [ -n "$1" ]; then
	printf '%s\n' "$!" >"$1"
fi
printf 'left a child behind\n'
exit 0
