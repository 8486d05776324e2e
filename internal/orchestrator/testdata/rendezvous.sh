#!/bin/sh
# rendezvous.sh DIR ME OTHER: creates DIR/ME, then waits for DIR/OTHER
# to exist and exits 0; exits 1 when OTHER never comes (about 60s). Two
# steps that run it for each other both succeed only when they run at
# the same time.
: >"$1/$2"
i=0
while [ ! -e "$1/$3" ]; do
	i=$((i + 1))
	if [ "$i" -gt 1200 ]; then
		printf '%s never came\n' "$3"
		exit 1
	fi
	sleep 0.05
done
printf 'met %s\n' "$3"
