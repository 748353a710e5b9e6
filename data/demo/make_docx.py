"""Write ``transcripts/int06.docx`` (interview 6, the internal auditor) with python-docx.

The interview text lives here, one paragraph per speaker turn (``Interviewer: ...`` / ``Omid: ...``), so
the ``.docx`` can be rebuilt and reviewed as text. Run from the repository root::

    .venv/bin/python data/demo/make_docx.py

Core properties (author, dates) are fixed so that the document's content is reproducible; the zip
container still stamps the current time on its members, so the bytes differ between runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

TITLE = "Interview 6 — performance audit, headquarters"

TURNS: tuple[str, ...] = (
    "Interviewer: Thank you for meeting me. Could you describe your position and what your unit does?",
    (
        "Omid: I lead the performance audit unit in the internal audit department at headquarters. We are "
        "nine auditors, and we look at whether programmes achieve what they promise, not only whether the "
        "money was spent according to the rules."
    ),
    "Interviewer: How did you become an auditor?",
    (
        "Omid: I studied accounting and worked for an audit firm for six years, mostly on banks. When my "
        "first child was born I wanted regular hours, which is a funny reason to join the public sector, but "
        "here I am eleven years later."
    ),
    "Interviewer: What has your unit looked at in relation to cooperation with other agencies?",
    (
        "Omid: In the last three years we audited the shared employer register, the data exchange with the "
        "civil registry and the joint service counters with the health insurance office. In all three cases "
        "the interesting findings were not inside our organisation but at the boundaries with the partners."
    ),
    "Interviewer: What kind of findings do you mean?",
    (
        "Omid: Mostly questions of who is responsible for what. In the register audit we found employer "
        "records that had been changed by the tax side and then corrected by our side and then changed back, "
        "and neither party had a procedure for settling which version was right. When we asked who owned the "
        "record, we received three different answers in writing."
    ),
    "Interviewer: Why is ownership so unclear?",
    (
        "Omid: Because the mandates were written separately and never reconciled. Our founding act says we "
        "keep the register of insured persons, the tax law says the tax authority keeps the register of "
        "businesses, and an employer is both at once. Inside our own house it is similar: contributions, "
        "pensions and IT each hold part of the process and report to different deputies."
    ),
    "Interviewer: Does the legal framework help auditors in such situations?",
    (
        "Omid: Only partly. Our mandate allows us to audit our organisation but not the partner, so we can "
        "see one half of the process in detail and the other half only through what they choose to show us. "
        "The supreme audit institution can look at both, but it visits every few years, not every quarter."
    ),
    "Interviewer: How do you audit a process that crosses organisational lines, then?",
    (
        "Omid: We started doing coordinated audits with the internal audit unit of the tax authority. We "
        "agree on the same questions and the same sample, each team audits its own side, and then we write a "
        "joint chapter on the interface. It takes longer, but it is the only way to see the whole chain."
    ),
    "Interviewer: What did the joint audit of the register show?",
    (
        "Omid: That the register really works for the simple cases. About ninety percent of records now match"
        " automatically, the manual correction team is much smaller, and the annual cost of processing an "
        "employer record has fallen noticeably. The remaining ten percent, however, take more effort than "
        "before because they bounce between two organisations."
    ),
    "Interviewer: Are the indicators used by management reliable, in your opinion?",
    (
        "Omid: The dashboards look impressive, with colours and trends, but some indicators are defined "
        "differently by each partner. The tax authority counts an employer as registered when the form "
        "arrives; we count it when the first contribution is paid. So the same dashboard can show progress on"
        " one side and stagnation on the other for the same month."
    ),
    "Interviewer: What did you recommend about that?",
    (
        "Omid: A common dictionary of indicators, signed by both partners, and an owner for every figure on "
        "the dashboard. We also recommended that the coordination council review audit findings as a standing"
        " item, so that follow-up does not depend on goodwill."
    ),
    "Interviewer: Has management acted on those recommendations?",
    (
        "Omid: About half of them, which is normal. The dictionary is being written now. The standing item on"
        " the council agenda was accepted in principle, but in two meetings out of three it falls off because"
        " the agenda is full."
    ),
    "Interviewer: What are the risks you see in governing through partnerships?",
    (
        "Omid: The main one is that accountability becomes blurred. A payment decision may use income data "
        "from the tax authority, civil status from the registry and employment history from us, and when it "
        "is wrong each party can show that its own data was correct at the time. For an auditor, a process "
        "where everyone is right and the result is wrong is the hardest thing to report on."
    ),
    "Interviewer: Does cooperation also make controls more complicated?",
    (
        "Omid: Definitely. Every interface needs its own controls, reconciliations and logs, and every "
        "memorandum of understanding has its own reporting rules. In one process we counted fourteen control "
        "points where there used to be five, and some of them duplicate each other because each partner wants"
        " its own assurance."
    ),
    "Interviewer: How do staff react when the auditors arrive?",
    (
        "Omid: Defensively, at first. People here have learned that an audit finding usually ends with "
        "someone being blamed, so they share as little as possible. We try to present ourselves as advisers "
        "and to report on systems rather than on persons, and in the last two years the atmosphere has "
        "improved a little."
    ),
    "Interviewer: What conditions would make joint projects easier to audit?",
    (
        "Omid: Clear documentation from the start: who decided what, on which legal basis, with which budget."
        " And a project sponsor at the highest level who actually reads the audit reports; when the managing "
        "director asks about a finding personally, it gets fixed within months."
    ),
    "Interviewer: Do you have enough auditors with technical skills for this work?",
    (
        "Omid: No. Half of the issues in data exchange are technical, and I have one auditor who can read an "
        "interface specification. We asked for two IT auditors in the last budget, and the posts were "
        "approved but never filled because the salary scale is not competitive."
    ),
    "Interviewer: Have you seen any savings attributable to these partnerships?",
    (
        "Omid: Yes, in the register and in the electronic income certificates. Our estimate was a reduction "
        "of roughly twelve percent in the administrative cost of processing a contribution, mostly from fewer"
        " manual corrections and less paper. Part of that saving is eaten by the cost of running the "
        "interfaces, which nobody put in the original business case."
    ),
    "Interviewer: How did the pandemic affect the partnerships you audit?",
    (
        "Omid: It accelerated them and weakened the controls at the same time. Several data exchanges were "
        "switched on within weeks under emergency decisions, without the usual risk assessment, and some "
        "still run on those temporary decisions today. Our next audit plan gives them priority."
    ),
    "Interviewer: Do citizens notice any difference?",
    (
        "Omid: The ones with simple cases do, because decisions are faster and they are asked for fewer "
        "documents. The ones with complicated cases, like people who worked abroad or for several employers "
        "at once, often notice the opposite, because their file now waits for several organisations."
    ),
    "Interviewer: What would you change in the way these partnerships are evaluated?",
    (
        "Omid: I would build evaluation into every partnership from the start, with a baseline, a few shared "
        "indicators and a review after one year. Today we usually arrive after the fact and try to "
        "reconstruct what the situation was before, which is expensive and not very convincing."
    ),
    "Interviewer: Is there anything else you think I should know?",
    (
        "Omid: Perhaps that auditors are part of the network too. If we audit each organisation separately, "
        "we reinforce the silos we criticise in our reports."
    ),
    "Interviewer: Thank you very much. Are you taking any leave this summer?",
    (
        "Omid: Two weeks by the sea, if the year-end closing allows it. My children have already packed, I "
        "think."
    ),
)


def write_docx(path: Path) -> None:
    """Write the title and one paragraph per turn of :data:`TURNS` to ``path``.

    Parameters
    ----------
    path : Path
        Where to write the ``.docx`` file; its folder must exist.
    """
    import docx

    document = docx.Document()
    document.add_heading(TITLE, level=1)
    for turn in TURNS:
        document.add_paragraph(turn)
    fixed = dt.datetime(2025, 4, 22, 10, 0, 0)
    props = document.core_properties
    props.author = "qualflow demo"
    props.last_modified_by = "qualflow demo"
    props.title = TITLE
    props.created = fixed
    props.modified = fixed
    props.revision = 1
    document.save(str(path))


def main() -> None:
    """Rebuild ``transcripts/int06.docx`` next to this script."""
    write_docx(Path(__file__).resolve().parent / "transcripts" / "int06.docx")


if __name__ == "__main__":
    main()
