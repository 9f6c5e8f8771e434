#!/bin/sh
echo deeper test.sh
