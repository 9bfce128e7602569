FROM busybox
ARG NONCE
RUN --mount=type=cache,id=single-flight,target=/count sh -c 'echo "$NONCE" >/dev/null; echo "first: $(wc -l < /count/first)"; echo "second: $(wc -l < /count/second)"'
