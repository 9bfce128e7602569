# A RUN that allocates and touches 200 MiB (dd's buffer): over a 32 MiB limit the OOM killer ends it.
FROM busybox
RUN echo before-allocation > /before
RUN dd if=/dev/zero of=/dev/null bs=200M count=1 && echo $((100+100))MiB-allocated
