#!/bin/sh
# hang.sh [PIDFILE [ignore-term]]: starts a background child that sleeps,
# writes "<own pid> <child pid>" to PIDFILE (a file or a FIFO), then
# sleeps itself: only a kill ends it. With "ignore-term", it and its
# child ignore SIGTERM, so that only SIGKILL does.
if [ "$2" = ignore-term ]; then
	trap '' TERM
fi
sleep 300 &
if [ -n "$1" ]; then
	printf '%s %s\n' "$$" "$!" >"$1"
fi
printf 'hanging\n'
sleep 300
