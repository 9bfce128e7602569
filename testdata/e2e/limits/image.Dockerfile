# An image for `builder run` with limits.
FROM busybox
RUN echo built > /built
