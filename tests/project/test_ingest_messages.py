"""What `qualflow ingest` says about a folder's contents: files of types it cannot read are named (not
skipped in silence), and OS junk is still ignored without a word."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

INTERVIEW = "Interviewer: How is work?\nNurse: Busy. We are short of staff.\n"


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def errors(r: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines on stderr (the progress bar leaves a blank one)."""
    return [line for line in r.stderr.splitlines() if line.strip()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    assert qf("init", "p", cwd=tmp_path).returncode == 0
    (tmp_path / "in").mkdir()
    return tmp_path


def test_files_of_other_types_in_a_folder_are_named(folder: Path) -> None:
    d = folder / "in"
    (d / "int01.txt").write_text(INTERVIEW, encoding="utf-8")
    (d / "int02.doc").write_bytes(b"\xd0\xcf\x11\xe0")  # Word 97-2003
    (d / "int03.TXT").write_text(INTERVIEW, encoding="utf-8")
    (d / "int04.text").write_text(INTERVIEW, encoding="utf-8")
    (d / "int05.pages").write_bytes(b"PK")
    (d / "int06.wpd").write_bytes(b"\xffWPC")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini", "~$int01.docx"):  # ignored without a word
        (d / junk).write_bytes(b"\x00junk")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2 added, 0 new versions, 0 unchanged; 6 segments",
        "skipped 4 files qualflow cannot read (.doc, .text, .pages, .wpd): in/int02.doc, in/int04.text, "
        "in/int05.pages, in/int06.wpd; save them as .txt or .docx",
    ]


def test_a_folder_of_only_other_types_says_what_it_skipped(folder: Path) -> None:
    (folder / "in" / "int02.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "in" / "Thumbs.db").write_bytes(b"\x00")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: no transcript files found in ['in'] (looked for .txt .md .docx .odt .rtf .pdf .vtt .srt .csv .tsv .xlsx); "
        "skipped 1 file qualflow cannot read (.doc): in/int02.doc; save it as .txt or .docx"
    )


def stored(folder: Path) -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
    """Per current source: (format, text, [(speaker, words)]) as the project stores them."""
    from pipeline.project.core import Project
    from pipeline.store.queries import current_sources

    proj = Project.open(folder / "p")
    try:
        with proj.store.transaction() as s:
            return {
                r.name: (r.format, r.text, [(t.speaker, r.text[t.start : t.end]) for t in r.turns])
                for r in current_sources(s)
            }
    finally:
        proj.close()


def test_a_folder_of_new_formats_with_a_codings_csv_beside_them(folder: Path) -> None:
    d = folder / "in"
    (d / "int01.csv").write_text(
        'Speaker,Time,Utterance\nInterviewer,0:01,How is work?\nNurse,0:04,"Busy, as ever."\n',
        encoding="utf-8",
    )
    (d / "int02.rtf").write_bytes(
        b"{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0 Arial;}}\\f0 Interviewer: Caf\\'e9?\\par "
        b"Nurse: Oui.\\par Interviewer: Et?\\par Nurse: Non.\\par}"
    )
    (d / "codings.csv").write_text("source,start,end,code,coder\nint01,0,4,staffing,ann\n", encoding="utf-8")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2 added, 0 new versions, 0 unchanged; 6 segments",
        "skipped 1 table that is not a transcript (no text column): in/codings.csv",
    ]
    assert stored(folder) == {
        "int01": (
            "csv",
            "Interviewer: How is work?\nNurse: Busy, as ever.",
            [("Interviewer", "How is work?"), ("Nurse", "Busy, as ever.")],
        ),
        "int02": (
            "rtf",
            "Interviewer: Café?\n\nNurse: Oui.\n\nInterviewer: Et?\n\nNurse: Non.",
            [("Interviewer", "Café?"), ("Nurse", "Oui."), ("Interviewer", "Et?"), ("Nurse", "Non.")],
        ),
    }
    # named on its own, the codings CSV is an error, and nothing is stored
    r = qf("--project", "p", "ingest", "in/codings.csv", cwd=folder)
    assert r.returncode == 2
    assert errors(r) == [
        "error: in/codings.csv: no text column in the header row (found 'source', 'start', 'end', 'code', "
        "'coder'); name the column of what was said one of: text, utterance, utterance_text, transcript, "
        "content, speech, words, says, dialogue"
    ]
    assert set(stored(folder)) == {"int01", "int02"}
    # a table with no speaker column: the note says how to add one
    (folder / "notes.tsv").write_text("Text\nFirst thought.\nSecond thought.\n", encoding="utf-8")
    r = qf("--project", "p", "ingest", "notes.tsv", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == [
        "note: notes: no speaker column found, so every row, the interviewer's questions too, is text of "
        "unknown role that will be coded and suggested for; if it is an interview, add a column of who "
        "speaks, headed speaker, name, interlocutor, participant, who or role (see docs/formats.md), and "
        "ingest it again"
    ]


NO_LABELS = (
    "Thanks for joining. Could you tell me about your job?\n\nSure. I work as a nurse.\n\n"
    "What makes it hard?\n\nStaffing mostly.\n"
)


def test_a_transcript_without_speaker_labels_gets_a_note(folder: Path) -> None:
    (folder / "in" / "int01.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "in" / "int02.txt").write_text(NO_LABELS, encoding="utf-8")
    r = qf("--project", "p", "ingest", "in/int01.txt", "in/int02.txt", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2 added, 0 new versions, 0 unchanged; 9 segments",
        "note: int02: no speaker labels found, so every paragraph, the interviewer's questions too, is text "
        "of unknown role that will be coded and suggested for; if it is an interview, start each turn with a "
        "speaker label (Interviewer: or I:, Participant: or P:, or a name like Anna:; see docs/formats.md) "
        "and ingest it again",
    ]
    # labels added: the new version has speakers and no note; several sources share one line
    (folder / "in" / "int02.txt").write_text(
        "Interviewer: Thanks for joining. Could you tell me about your job?\nNurse: Sure. I work as a nurse.\n"
        "Interviewer: What makes it hard?\nNurse: Staffing mostly.\n",
        encoding="utf-8",
    )
    (folder / "in" / "int03.txt").write_text(NO_LABELS, encoding="utf-8")
    (folder / "in" / "int04.txt").write_text("Field notes.\n", encoding="utf-8")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == [
        "  int02: version 1 -> 2",
        "note: int03, int04: no speaker labels found, so every paragraph, the interviewer's questions too, is "
        "text of unknown role that will be coded and suggested for; if they are interviews, start each turn "
        "with a speaker label (Interviewer: or I:, Participant: or P:, or a name like Anna:; see "
        "docs/formats.md) and ingest them again",
    ]


def test_a_new_version_sharing_almost_no_text_is_flagged_as_another_interview(folder: Path) -> None:
    (folder / "in" / "int01.txt").write_text(INTERVIEW, encoding="utf-8")
    assert qf("--project", "p", "ingest", "in/int01.txt", cwd=folder).returncode == 0
    (folder / "in" / "int01.txt").write_text(
        "Interviewer: Where did you grow up?\nFarmer: On a sheep station near the coast, miles from town.\n",
        encoding="utf-8",
    )
    r = qf("--project", "p", "ingest", "in/int01.txt", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "0 added, 1 new version, 0 unchanged; 2 segments"
    assert r.stdout.splitlines()[1:] == [
        "  int01: version 1 -> 2",
        "warning: int01: the new text shares only 0% with version 1 — a different interview with the same "
        "name? If it is another interview, `qualflow ingest` the transcript of version 1 again (its codings "
        "come back with it), then rename the new file and ingest it",
    ]


CP1252 = (
    "Interviewer: Tell me about the \u201cnew rota\u201d \u2013 how does it work?\nNurse: It\u2019s awful.\n"
)


def test_every_undecodable_file_is_named_at_once_and_nothing_is_stored(folder: Path) -> None:
    d = folder / "in"
    for i in (1, 2, 4):
        (d / f"int0{i}.txt").write_text(INTERVIEW, encoding="utf-8")
    for i in (3, 5):
        (d / f"int0{i}.txt").write_bytes(CP1252.encode("cp1252"))
    (d / "int06.txt").write_bytes("Interviewer: Caf\u00e9 breaks?\nNurse: None.\n".encode("cp1252"))
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 2
    assert errors(r) == [
        "error: 3 files are not UTF-8 or UTF-16 text, so nothing was ingested: in/int03.txt (byte 0x93 at "
        "offset 31), in/int05.txt (byte 0x93 at offset 31), in/int06.txt (byte 0xe9 at offset 16); re-save "
        "them as UTF-8 (Save As in the editor, or iconv -f WINDOWS-1252 -t UTF-8)"
    ]
    assert r.stdout == ""
    assert "int01" not in qf("--project", "p", "sources", cwd=folder).stdout  # all or nothing, as before
    # other unreadable files are named in the same line, each with its own fix
    (d / "int03.txt").write_text(INTERVIEW.replace("work", "school"), encoding="utf-8")
    (d / "int07.txt").write_bytes(b"\x00\x01binary")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 2
    assert errors(r) == [
        "error: 3 files cannot be read, so nothing was ingested: 2 are not UTF-8 or UTF-16 text: in/int05.txt "
        "(byte 0x93 at offset 31), in/int06.txt (byte 0xe9 at offset 16); re-save them as UTF-8 (Save As in "
        "the editor, or iconv -f WINDOWS-1252 -t UTF-8); in/int07.txt: contains NUL bytes, so it is a binary "
        "file (or UTF-16 without a byte-order mark), not text; save the transcript as UTF-8 text"
    ]
    # a single bad file keeps its own message
    (d / "int05.txt").unlink()
    (d / "int06.txt").unlink()
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 2
    assert errors(r) == [
        "error: in/int07.txt: contains NUL bytes, so it is a binary file (or UTF-16 without a byte-order mark), "
        "not text; save the transcript as UTF-8 text"
    ]


def test_a_table_of_several_interviews_is_noted_and_split(folder: Path) -> None:
    (folder / "in" / "study.csv").write_text(
        "transcript_id,interlocutor,utterance_text\n1,therapist,Why?\n1,client,Because.\n2,therapist,How?\n"
        "2,client,Fine.\n",
        encoding="utf-8",
    )
    r = qf("--project", "p", "ingest", "in/study.csv", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert (
        "note: study.csv became one source, but its column 'transcript_id' names 2 different values; if those "
        "are separate interviews, make one file each with `qualflow split in/study.csv --by transcript_id`"
    ) in " ".join(r.stdout.split())
    r = qf("split", "in/study.csv", "--by", "transcript_id", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert " ".join(r.stdout.split()) == (
        "wrote 2 files (4 rows) to in/study-by-transcript_id; ingest them with `qualflow ingest "
        "in/study-by-transcript_id`"
    )
    r = qf("--project", "p", "ingest", "in/study-by-transcript_id", cwd=folder)
    assert r.returncode == 0 and r.stdout.startswith("2 added"), r.stdout + r.stderr
    assert "became one source" not in r.stdout
    again = qf("split", "in/study.csv", "--by", "transcript_id", cwd=folder)
    assert again.returncode == 2 and errors(again) == [
        "error: in/study-by-transcript_id/study-1.csv and 1 more already exist; choose another --out folder "
        "or delete them"
    ]


def test_a_bad_time_in_a_table_is_a_note_not_a_refusal(folder: Path) -> None:
    (folder / "in" / "t.csv").write_text(
        "speaker,time,text\nInt,0:05,Why?\nAnn,00:09:025,Because.\n", "utf-8"
    )
    r = qf("--project", "p", "ingest", "in/t.csv", cwd=folder)
    assert r.returncode == 0 and r.stdout.startswith("1 added"), r.stdout + r.stderr
    assert (
        "note: in/t.csv: 1 row has a 'time' that is not a time (row 3 '00:09:025'), stored without one"
        in " ".join(r.stdout.split())
    )


def test_split_by_a_column_with_a_slash_in_its_name(folder: Path) -> None:
    (folder / "in" / "t.csv").write_text("Interview/Respondent,text\n1,Hi.\n2,Yes.\n", encoding="utf-8")
    r = qf("split", "in/t.csv", "--by", "Interview/Respondent", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (folder / "in" / "t-by-Interview_Respondent").iterdir()) == [
        "t-1.csv",
        "t-2.csv",
    ]


def test_split_needs_by_or_each_row(folder: Path) -> None:
    (folder / "in" / "a.csv").write_text("text\nCalm.\nBusy.\n", encoding="utf-8")
    r = qf("split", "in/a.csv", cwd=folder)
    assert r.returncode == 2 and errors(r) == [
        "error: say how to split the table: --by COLUMN (one file per interview) or --each-row"
    ]
    r = qf("split", "in/a.csv", "--each-row", cwd=folder)
    assert r.returncode == 0 and sorted(p.name for p in (folder / "in" / "a-by-row").iterdir()) == [
        "a-2.csv",
        "a-3.csv",
    ]
