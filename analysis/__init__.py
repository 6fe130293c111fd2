"""Pure statistics, figures and report text: arrays in, arrays / figures / text out. Nothing here
reads or writes files or knows about models; the commands in `mirrorlab.experiments` do the I/O."""
