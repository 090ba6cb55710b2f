"""C-FIND and retrieve queries on the archive's index (PS3.4 C.4.1.3, C.4.2.2, C.6).

A C-FIND identifier becomes one SQL SELECT over the table of the query's level joined
with the tables above it (`dimse.archive.query_sql.from_clause`):

- keys the index keeps in a column, or computes (PS3.4 C.3.4), are matched in SQL
  where `dimse.archive.query_sql.sql_condition` can say it (single values, wild cards
  (`dimse.archive.dialect`), lists of UIDs, ranges on the comparable twin columns), in Python on the
  row otherwise (PN, whose component groups and case rules SQL does not know);
- other keys (sequences, attributes the index does not keep) are matched and answered
  from one stored instance of the entity, the one stored last (an IMAGE-level row is
  its own instance), read for just those attributes.

Decisions where the standard leaves room:

- Hierarchical search (C.4.1.3.1.1), leniently: the Unique Keys of the levels above
  restrict the search, and so do other keys of those levels when present (an SCU that
  sends PatientName in a SERIES query gets what it meant, as with Orthanc); when the
  Unique Keys above are absent the search spans every parent. Relational search is
  not offered. Keys of levels below the query level are not matched and are returned
  zero-length.
- The response holds the requested keys, the Unique Key of the level (even if not
  requested), Query/Retrieve Level, and a Specific Character Set chosen by
  `dimse.archive.response_charset`. Retrieve AE Title, when requested, is returned empty for
  the server to fill (the archive does not know its AE title); Instance Availability
  is ONLINE. A requested key that no stored instance holds is returned zero-length
  (C.4.1.1.3.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag
from pydicom.valuerep import IS, DSfloat

from dimse.archive.backend import Row
from dimse.archive.conditions import (
    UNIVERSAL,
    Key,
    QueryError,
    Universal,
    compile_condition,
    compile_keys,
)
from dimse.archive.dialect import SQLITE, Dialect
from dimse.archive.instance_header import UnreadableInstance, read_attributes
from dimse.archive.matching import element_matches, person_name, response_element, values_match
from dimse.archive.query_keys import COLUMNS_BY_TAG, IMAGE, NOT_MATCHED, entity_of, model_level
from dimse.archive.query_sql import (
    COMPUTED_LEVELS,
    column_expr,
    computed,
    from_clause,
    representative_expr,
    sql_condition,
)
from dimse.archive.response_charset import (
    character_set_element,
    choose_character_set,
    element_strings,
    request_character_set,
)
from dimse.archive.schema import UNIQUE
from dimse.models import LEVELS, Root, levels_of

log = logging.getLogger(__name__)

_QUERY_RETRIEVE_LEVEL = BaseTag(0x00080052)
_RETRIEVE_AE_TITLE = BaseTag(0x00080054)
_INSTANCE_AVAILABILITY = BaseTag(0x00080056)
_ECHOED = (0x00080053, 0x00080201)  # Query/Retrieve View, Timezone Offset From UTC


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # a typo in a table of ours
        raise ValueError(f"{keyword} is not a DICOM keyword")
    return int(tag)


_COMPUTED_BY_TAG = {_tag(name): name for name in COMPUTED_LEVELS}
_UNIQUE_TAGS = {level: _tag(keyword) for level, keyword in UNIQUE.items()}


def check_level(root: Root, level: str) -> None:
    """Refuse a level the model does not have (PS3.4 C.6.2.1: no PATIENT level in the
    Study Root model) with A900, as an identifier that does not match the SOP Class."""
    if root is Root.WORKLIST:
        raise QueryError(
            "the Modality Worklist model is answered by dimse.archive.worklist, not the archive"
        )
    if level not in levels_of(root):
        raise QueryError(
            f"Query/Retrieve Level {level!r} is not a level of the {root.value} root model"
        )


def _typed(vr: str, text: str) -> Any:
    """A stored text as the value of a response element of VR `vr`."""
    if not text:
        return None
    parts = text.split("\\")
    values: list[Any]
    if vr == "PN":
        values = [person_name(p) for p in parts]
    elif vr in ("US", "UL", "SS", "SL", "UV", "SV"):
        values = [int(p) for p in parts]
    elif vr in ("FL", "FD"):
        values = [float(p) for p in parts]
    elif vr == "IS":
        values = [IS(p, validation_mode=config.IGNORE) for p in parts]
    elif vr == "DS":
        values = [DSfloat(p, validation_mode=config.IGNORE) for p in parts]
    else:
        values = parts
    return values[0] if len(values) == 1 else values


def _text(value: object) -> str:
    """A result column as text: counts come back from the database as integers."""
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Planned:
    """A key with where its value comes from: a result column (`name`), or the stored
    instance (`name` None), or nowhere (`absent`: a key of a level below the query's)."""

    key: Key
    tag: BaseTag
    name: str | None
    absent: bool = False
    in_sql: bool = False


class FindQuery:
    """One C-FIND of the Patient Root or Study Root model against the index."""

    def __init__(
        self,
        identifier: Dataset,
        root: Root,
        level: str,
        *,
        fold_pn: bool,
        dialect: Dialect = SQLITE,
    ) -> None:
        check_level(root, level)
        self.level = level
        self.dialect = dialect
        self.requested_charset = request_character_set(identifier)
        self.echoed = [identifier[t] for t in _ECHOED if t in identifier]
        self.wants_ae_title = _RETRIEVE_AE_TITLE in identifier
        self.wants_availability = _INSTANCE_AVAILABILITY in identifier
        keys = compile_keys(identifier, skip=NOT_MATCHED, fold_pn=fold_pn)
        unique = _UNIQUE_TAGS[level]
        if all(k.tag != unique for k in keys):
            keys.append(Key(unique, dictionary_VR(unique), UNIVERSAL))

        self._selects: list[str] = []
        self._where: list[str] = []
        self._params: list[Any] = []
        self._planned: list[_Planned] = []
        rank = LEVELS.index(level)
        for key in keys:
            entity = entity_of(key.tag) or level
            if LEVELS.index(model_level(entity, root)) > rank:
                self._planned.append(_Planned(key, BaseTag(key.tag), None, absent=True))
                continue
            self._plan(key)
        self._file_keys = [p.key for p in self._planned if p.name is None and not p.absent]
        if self._file_keys:
            self._selects.append(f"{representative_expr(level, dialect)} AS path")
        # Python tests: cheap ones on the row first, then those that read a file.
        self._row_tests = [p for p in self._planned if p.name is not None and not p.in_sql]
        self._file_tests = [k for k in self._file_keys if not isinstance(k.condition, Universal)]

    def _plan(self, key: Key) -> None:
        column = COLUMNS_BY_TAG.get(key.tag)
        name = f"k{len(self._selects)}"
        if column is not None and key.vr != "SQ":
            expr = column_expr(column)
        elif key.tag in _COMPUTED_BY_TAG:
            # entity_of() put it at or above the query level, so its table is joined
            expr = computed(self.dialect)[_COMPUTED_BY_TAG[key.tag]][2]
        else:
            self._planned.append(_Planned(key, BaseTag(key.tag), None))
            return
        self._selects.append(f"{expr} AS {name}")
        # computed values are tested in Python: a count or a list is no column
        clause = (
            sql_condition(expr, key.vr, key.condition, self.dialect) if column is not None else None
        )
        if clause is not None and not isinstance(key.condition, Universal):
            self._where.append(clause[0])
            self._params += clause[1]
        self._planned.append(_Planned(key, BaseTag(key.tag), name, in_sql=clause is not None))

    def sql(self) -> tuple[str, list[Any]]:
        where = " AND ".join(self._where) or self.dialect.true
        return (
            f"SELECT {', '.join(self._selects)} FROM {from_clause(self.level)} WHERE {where}",
            self._params,
        )

    def respond(self, row: Row, root_dir: Path) -> Dataset | None:
        """The response for one row, or None when a key tested in Python fails."""
        for planned in self._row_tests:
            assert planned.name is not None
            text = _text(row[planned.name])
            if not values_match(
                planned.key.condition, planned.key.vr, text.split("\\") if text else []
            ):
                return None
        source: Dataset | None = None
        if self._file_keys:
            source = self._read(root_dir, row["path"])
            if source is not None and not all(element_matches(k, source) for k in self._file_tests):
                return None
            if source is None and self._file_tests:
                return None
        # The elements go into one dict given to Dataset(): adding them one by one
        # through Dataset.__setitem__ was most of the cost of a large answer.
        elements: dict[BaseTag, DataElement | RawDataElement] = {}
        other_text: list[str] = []  # non-ASCII strings: they decide the character set
        for planned in self._planned:
            key = planned.key
            tag = planned.tag
            if planned.name is not None:
                text = _text(row[planned.name])
                if not text.isascii():
                    other_text.append(text)
                value = _typed(key.vr, text)
                elements[tag] = DataElement(
                    tag, key.vr, value, already_converted=True, validation_mode=config.IGNORE
                )
            elif planned.absent:
                elements[tag] = DataElement(
                    tag, key.vr, DicomSequence() if key.vr == "SQ" else None
                )
            else:
                element = response_element(key, source)
                elements[tag] = element
                other_text += [t for t in element_strings(element) if not t.isascii()]
        elements[_QUERY_RETRIEVE_LEVEL] = DataElement(
            _QUERY_RETRIEVE_LEVEL, "CS", self.level, already_converted=True
        )
        if self.wants_ae_title:
            elements[_RETRIEVE_AE_TITLE] = DataElement(_RETRIEVE_AE_TITLE, "AE", None)
        if self.wants_availability:
            elements[_INSTANCE_AVAILABILITY] = DataElement(
                _INSTANCE_AVAILABILITY, "CS", "ONLINE", already_converted=True
            )
        for element in self.echoed:  # a copy each: responses share no element
            elements[element.tag] = DataElement(
                element.tag, element.VR, element.value, already_converted=True
            )
        charset = character_set_element(choose_character_set(other_text, self.requested_charset))
        if charset is not None:
            elements[charset.tag] = charset
        return Dataset(elements)  # pydicom orders the elements when it iterates or writes

    def _read(self, root_dir: Path, relative: str | None) -> Dataset | None:
        if not relative:
            return None
        try:
            return read_attributes(root_dir / relative, (k.tag for k in self._file_keys))
        except UnreadableInstance as exc:
            log.warning("C-FIND: attributes not read from a stored instance: %s", exc)
            return None


def run_find(
    query: FindQuery, select: Callable[[str, list[Any]], Iterator[Row]], root_dir: Path
) -> Iterator[Dataset]:
    """The responses of `query`, one per matching entity."""
    sql, params = query.sql()
    for row in select(sql, params):
        try:
            response = query.respond(row, root_dir)
        except QueryError as exc:  # a stored sequence too deep to copy: skip that entity
            log.warning("C-FIND: a match left out: %s", exc)
            continue
        if response is not None:
            yield response


def retrieve_sql(
    identifier: Dataset, root: Root, level: str, dialect: Dialect = SQLITE
) -> tuple[str, list[Any]]:
    """The SELECT of the instances a C-MOVE or C-GET identifier names (PS3.4 C.4.2.2.1:
    the Unique Keys of the level and the levels above; other keys are ignored). The
    Unique Key of the level itself is required."""
    check_level(root, level)
    where: list[str] = []
    params: list[Any] = []
    for upper in levels_of(root)[: levels_of(root).index(level) + 1]:
        tag = _UNIQUE_TAGS[upper]
        element: DataElement | None = identifier.get(tag)
        column = COLUMNS_BY_TAG[tag]
        condition = (
            compile_condition(column.vr, element.value) if element is not None else UNIVERSAL
        )
        if upper == level and isinstance(condition, Universal):
            raise QueryError(
                f"the identifier has no {column.keyword}, the Unique Key of the {level} level"
            )
        clause = sql_condition(column_expr(column), column.vr, condition, dialect)
        if clause is None:
            raise QueryError(f"{column.keyword}: a value that cannot name instances to retrieve")
        where.append(clause[0])
        params += clause[1]
    sql = (
        "SELECT i.SOPClassUID, i.SOPInstanceUID, i.TransferSyntaxUID, i.path"
        f" FROM {from_clause(IMAGE)} WHERE {' AND '.join(where)} ORDER BY i.{dialect.order}"
    )
    return sql, params
