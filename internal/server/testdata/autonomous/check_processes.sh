#!/bin/sh
# check_processes.sh HOST: the diagnostic step of the story. It records
# that it ran, names the busiest process and hands its pid to later steps.
printf 'check %s\n' "$1" >> "$REFLEX_TEST_MARKS"
printf 'busiest process on %s: stress (pid 4242, 97%% cpu)\n' "$1"
printf 'reflex-output: pid=4242\n'
