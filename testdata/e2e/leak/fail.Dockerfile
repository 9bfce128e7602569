# A build that fails: the second RUN exits 1 with background processes still running.
FROM busybox
RUN --network=none --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/cache,id=leak-cache \
    cat /ctx/data.txt > /scratch/copy || exit 1; sleep 100 >/dev/null 2>&1 & echo leak-fail-first
RUN --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/cache,id=leak-cache \
    sleep 100 >/dev/null 2>&1 & echo leak-fail-second; exit 1
