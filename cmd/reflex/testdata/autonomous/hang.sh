#!/bin/sh
# hang.sh: the step the kill-during-execution test kills the server in.
# It writes its pid (the leader of the process group the command executor
# gives it) to $REFLEX_TEST_MARKS.pid, records its start in
# $REFLEX_TEST_MARKS, and sleeps far longer than the test lasts.
printf '%s\n' "$$" > "$REFLEX_TEST_MARKS.pid"
printf 'start %s\n' "$$" >> "$REFLEX_TEST_MARKS"
exec sleep 300
