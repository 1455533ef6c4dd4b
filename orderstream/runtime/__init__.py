"""The two runtimes: the processor (write side) and the projector (read side), the replay, the stage supervisor."""
