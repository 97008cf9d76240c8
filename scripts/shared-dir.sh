# Sourced by test.sh and demo.sh: sets $shared to the shared data folder (vectors/, bench/).
# It is $BAGPIPE_SHARED if set, else ../shared beside this repository, else ../shared beside the
# repository this one was cloned from when that is a local path (a clone in a temporary folder).
shared="${BAGPIPE_SHARED:-}"
if [ -z "$shared" ]; then
    shared="$(cd .. && pwd)/shared"
    if [ ! -d "$shared/vectors" ]; then
        origin="$(git config --get remote.origin.url 2>/dev/null || true)"
        if [ -n "$origin" ] && [ -d "$origin" ] && [ -d "$origin/../shared/vectors" ]; then
            shared="$(cd "$origin/.." && pwd)/shared"
        fi
    fi
fi
