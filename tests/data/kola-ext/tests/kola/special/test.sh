#!/bin/sh
## kola:
##   requiredTag: special
##   architectures: "!s390x ppc64le"
echo special
