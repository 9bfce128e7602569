# A build the test interrupts (SIGINT, SIGTERM) or kills (SIGKILL) while its RUN sleeps:
# on the default network, with every mount kind and background processes.
FROM busybox
RUN --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/cache,id=leak-cache \
    cat /ctx/data.txt > /scratch/copy && echo x >> /cache/log || exit 1; \
    (sleep 100 >/dev/null 2>&1 &) ; sleep 100 >/dev/null 2>&1 & echo leak-step-running; sleep 100
