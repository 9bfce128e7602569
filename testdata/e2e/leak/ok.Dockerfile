# A build that succeeds: a RUN on the default (NAT) network and one without a network,
# each with a bind, a tmpfs and a cache mount, each leaving background processes that
# must die with the step.
FROM busybox
RUN --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch,size=1m --mount=type=cache,target=/cache,id=leak-cache \
    cat /ctx/data.txt > /scratch/copy && cat /scratch/copy >> /cache/log || exit 1; \
    sleep 100 >/dev/null 2>&1 & sleep 100 >/dev/null 2>&1 & echo leak-ok-default
RUN --network=none --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/cache,id=leak-cache \
    cp /ctx/data.txt /scratch/copy && wc -l /cache/log || exit 1; \
    sleep 100 >/dev/null 2>&1 & echo leak-ok-none
