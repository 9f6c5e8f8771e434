#!/bin/sh
## kola:
##   # YAML, so comments are fine
##   tags: "smoke ignition"
##   timeoutMin: 2
##   exclusive: false
##   description: "checks the harness's environment"
set -eu
echo "KOLA_TEST=$KOLA_TEST"
echo "KOLA_TEST_EXE=$KOLA_TEST_EXE"
echo "mark=${AUTOPKGTEST_REBOOT_MARK:-none}"
test "$(id -u)" = 0
