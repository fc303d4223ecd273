"""A DICOM node for the hospital (§8.2.3, §8.4.1): ``mrilearn serve`` receives series from a
scanner or PACS over C-STORE, runs a trained model on each complete series and sends the
derived series (an MR series, or a DICOM Segmentation for a label-map model) on by C-STORE,
or writes it to a folder.

The pieces, each in its own module:

- :mod:`~mrilearn.node.settings`: what the node is told (AE titles, ports, limits);
- :mod:`~mrilearn.node.spool`: the 0700 folder where received instances wait, grouped by
  SeriesInstanceUID, and the watcher that says when a series is complete (no instance for
  ``series_timeout`` seconds); a restart resumes from it;
- :mod:`~mrilearn.node.receive`: the C-STORE handler, which only checks and spools, so
  associations stay responsive while a model runs;
- :mod:`~mrilearn.node.worker`: the one thread that runs jobs one at a time (read, infer,
  write, send, audit, delete);
- :mod:`~mrilearn.node.send`: the C-STORE client to the forward destination;
- :mod:`~mrilearn.node.audit`: one JSON line per series (UIDs, model, timings; no names);
- :mod:`~mrilearn.node.server`: the node that ties them together, and clean shutdown.

It uses a trained run only through :class:`~mrilearn.engine.contract.Predictor`.
"""
