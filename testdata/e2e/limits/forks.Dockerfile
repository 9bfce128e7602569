# A RUN that forks 40 background processes: over a pids limit of 20, busybox sh cannot fork.
FROM busybox
RUN i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo forked-$i
