#!/bin/sh
# Hangs until killed: says "started", then waits for a child that loops
# forever and carries the marker ($1) in its command line, so that a test
# can look for the process group with pgrep -f after a timeout killed it.
/bin/sh -c 'while :; do sleep 1; done' hang-child "$1" &
echo started
wait
