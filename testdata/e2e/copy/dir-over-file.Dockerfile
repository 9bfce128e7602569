FROM scratch
COPY a.txt /x
COPY data /x
