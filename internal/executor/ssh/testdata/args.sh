#!/bin/sh
# Prints each argument it was given in brackets, one a line, exactly as it
# arrived: the SSH executor's tests check that every argument reached the
# remote program as one argument, unchanged.
printf '[%s]\n' "$@"
