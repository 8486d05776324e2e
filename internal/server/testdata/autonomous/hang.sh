#!/bin/sh
# hang.sh: records its pid in $REFLEX_TEST_MARKS.pid and sleeps until it
# is killed.
echo $$ > "$REFLEX_TEST_MARKS.pid"
exec sleep 300
