#!/bin/sh
# Prints the interpreter `make` builds the venv with: the oldest Python 3.12+
# on this host, found on PATH or among pyenv's versions, because Django 6's
# tasks framework (dj_daemon.contrib.django) needs 3.12; else plain python3,
# which runs everything but the Django backend (its tests then skip, saying so).
for v in 3.12 3.13 3.14; do
    if python$v -c '' 2>/dev/null; then command -v python$v; exit 0; fi
    root=$(pyenv root 2>/dev/null) || continue
    best=$(ls "$root/versions" 2>/dev/null | grep -E "^$v\.[0-9]+$" | sort -t. -k3 -n | tail -1)
    if [ -n "$best" ] && [ -x "$root/versions/$best/bin/python$v" ]; then
        echo "$root/versions/$best/bin/python$v"; exit 0
    fi
done
echo python3
