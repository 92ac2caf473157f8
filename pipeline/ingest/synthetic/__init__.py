"""The synthetic feed: a reproducible stand-in for a primary care practice's feed.

:func:`generate` yields ``(member key, EncounterEvent)`` pairs shaped exactly as the
``claims.EncounterEvent`` schema expects them from fastavro: ``date`` objects for
dates, timezone-aware UTC ``datetime`` for timestamps, ``None`` for nulls and
ICD-10-CM codes without dots. The member key is the coverage member id, or the
patient's person id for self-pay.

A panel of patients is created first, each with an age, a payer that fits the
age, coverage, a primary clinician and chronic conditions. Encounters then follow
in service-date order over about ten months, drawn from :data:`SCENARIOS`, a table
of clinically coherent visits in which every service points at the diagnoses
that support it. An office visit's note documents total time and medical
decision making that support the level billed (most notes both, some one, a few
neither), and a visit billed beside a minor procedure or a preventive visit
carries modifier 25. A share of encounters carries one injected problem (a
header diagnosis, an overcoded visit, terminated coverage, a late release...)
at about the rate practices see, so the coding edits, the scrubber and the
payers have holds and denials to work on; each coding problem trips one kind of
coding edit. :func:`generate_labelled` also names the problem of each event, or
``"clean"``.

All randomness comes from one ``random.Random(seed)``: the same
``(count, seed, start)`` gives the same events. Nothing is read but the packaged
reference data (payer profiles, the procedure code list and its MUEs).

The modules, in the order they build on each other: :mod:`.parameters`,
:mod:`.scenarios`, :mod:`.people`, :mod:`.problems`, :mod:`.catalogue`,
:mod:`.records`, :mod:`.miscoding` and :mod:`.simulation`.
"""

from pipeline.ingest.synthetic.simulation import generate, generate_labelled

__all__ = ["generate", "generate_labelled"]
