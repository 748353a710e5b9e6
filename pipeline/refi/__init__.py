"""REFI-QDA exchange: codebooks (``.qdc``, :mod:`pipeline.refi.qdc`) and projects (``.qdpx``,
:mod:`pipeline.refi.qdpx`), as MAXQDA, NVivo, ATLAS.ti and QualCoder read and write them.

The schema is QDA-XML 1.0 (REFI, MIT licence): ``Project-mrt2019.xsd``.
"""
