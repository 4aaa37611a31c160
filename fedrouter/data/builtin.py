"""Embedded synthetic multitask benchmark (`builtin`): offline stand-ins for QQP, Gigaword, SAMSum and WebNLG."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

from fedrouter.data.splits import BENCHMARK_TASKS

TASKS: tuple[str, ...] = BENCHMARK_TASKS  # the built-in tasks mirror the paper's benchmark, in its order

# The prompt template used by the rest of the project; its words must be in the tokenizer vocabulary.
PROMPT_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{instruction}\n\n### Response:"
)

# ---------------------------------------------------------------- the shared world (one lexicon for all)
FIRST_NAMES = tuple(
    "Alan Anna Ben Clara David Emma Felix Grace Henry Iris Jack Kate Leo Maria Nick Olivia Paul Rosa Sam Tina "
    "Victor Wendy Adam Bella Carl Diana Eric Fiona George Hannah Ivan Julia Kevin Laura Mark Nora Oscar Peter "
    "Rachel Simon Tom Vera Walter Yara Zoe Lucy Martin Irene".split()
)
LAST_NAMES = tuple(
    "Bean Smith Turner Walker Baker Carter Fisher Hughes Morgan Parker Reed Shaw Stone Ward Young Brooks Cole "
    "Dixon Ellis Grant Hayes Kemp Lane Mills Nash Owen Price Quinn Rowe Fox".split()
)
PLACES = tuple(
    tuple(p.split("/"))
    for p in (
        "Wheeler/Texas Austin/Texas Dayton/Ohio Toledo/Ohio Salem/Oregon Eugene/Oregon Boulder/Colorado "
        "Aspen/Colorado Tampa/Florida Orlando/Florida Reno/Nevada Fresno/California Oakland/California "
        "Bristol/England Leeds/England York/England Cardiff/Wales Swansea/Wales Dundee/Scotland Perth/Scotland "
        "Lyon/France Nantes/France Porto/Portugal Braga/Portugal Turin/Italy Verona/Italy Graz/Austria "
        "Bergen/Norway Malmo/Sweden Ghent/Belgium"
    ).split()
)
CITIES = tuple(c for c, _ in PLACES)
REGIONS = tuple(dict.fromkeys(r for _, r in PLACES))  # ordered de-duplication keeps determinism
OCCUPATIONS = tuple(
    "Test_pilot Engineer Teacher Painter Doctor Architect Journalist Lawyer Chef Astronaut Farmer Musician "
    "Nurse Photographer Novelist Carpenter Banker Economist Botanist Sculptor".split()
)
ORGS = tuple(
    "Northwind_Bank Blue_River_Studios Harbor_Hospital Summit_Airlines Green_Valley_Farms Silver_Lake_Press "
    "Redwood_Motors Bright_Star_Foods Iron_Bridge_Works Oak_Tree_Software Golden_Gate_Media Maple_Leaf_Energy "
    "Atlas_Shipping Nova_Labs Pioneer_Textiles".split()
)
UNIVERSITIES = tuple(f"University_of_{r}" for r in REGIONS)
AWARDS = tuple(
    "Golden_Pen_Award Silver_Star_Medal Blue_Ribbon_Prize Crystal_Globe_Award Bronze_Lion_Prize "
    "Grand_Harbor_Prize".split()
)
OBJECTS = tuple(
    "key wallet umbrella laptop camera charger notebook jacket passport book scarf guitar bike phone watch "
    "backpack lamp ticket map bag".split()
)
VENUES = tuple("cinema park beach museum gym library zoo concert market pool cafe theatre stadium gallery".split())
ROOMS = ("kitchen", "car", "office", "garage", "hall", "bedroom", "living room", "garden", "bathroom", "basement")
EVENTS = tuple("party meeting dinner match rehearsal class wedding trip lunch game".split())
REASONS = ("a cold", "work", "traffic", "a flight delay", "the rain", "a family dinner", "an exam",
           "a headache", "a deadline", "a doctor appointment")
DAYS = ("today", "tonight", "tomorrow", "on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday",
        "on Saturday", "on Sunday", "this weekend", "next week")
TIMES = ("five", "six", "seven", "eight", "nine", "ten", "noon")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FACILITIES = tuple("hospital school factory airport stadium library bridge museum station market".split())
CRIMES = ("robbery", "fight", "protest", "fire", "break-in", "riot")
QUARTERS = ("first", "second", "third", "fourth")
WEATHER = ("snow", "rain", "fog", "hail", "storms")
TOPICS = ("trade", "energy", "security", "climate", "tourism", "farming", "health", "transport")
SKILLS = ("the guitar", "the piano", "the violin", "Spanish", "French", "German", "chess", "painting",
          "swimming", "photography", "programming", "drawing", "singing", "dancing")
DISHES = ("pasta", "pancakes", "curry", "soup", "bread", "pizza", "rice", "a cake", "an omelette", "salad",
          "noodles", "dumplings")
GLUE = ("a", "an", "and", ",", ".", ";", "'s", "[", "]", "'", "|", "-", "#")  # joiners produced outside templates


def _a(noun: str) -> str:
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _plain(entity: str) -> str:
    """WebNLG-style entity -> surface text (underscores become spaces)."""
    return entity.replace("_", " ")


# ---------------------------------------------------------------- webnlg: triples -> sentence
# predicate -> (object pool, clause template); the clause is a deterministic function of the object.
PREDICATES: dict[str, tuple[tuple[str, ...], Callable[[str], str]]] = {
    "birthPlace": (tuple(f"{c},_{r}" for c, r in PLACES), lambda o: f"was born in {_plain(o)}"),
    "deathPlace": (tuple(f"{c},_{r}" for c, r in PLACES), lambda o: f"died in {_plain(o)}"),
    "residence": (tuple(f"{c},_{r}" for c, r in PLACES), lambda o: f"lives in {_plain(o)}"),
    "occupation": (OCCUPATIONS, lambda o: "worked as " + _a(_plain(o).lower())),
    "employer": (ORGS, lambda o: f"worked for {_plain(o)}"),
    "almaMater": (UNIVERSITIES, lambda o: f"studied at the {_plain(o)}"),
    "spouse": (tuple(f"{f}_{la}" for f in FIRST_NAMES for la in LAST_NAMES), lambda o: f"was married to {_plain(o)}"),
    "award": (AWARDS, lambda o: f"won the {_plain(o)}"),
}
PREDICATE_NAMES = tuple(PREDICATES)
CLAUSE_WORDS = ("was born in", "died in", "lives in", "worked as", "worked for", "studied at the",
                "was married to", "won the")


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}_{rng.choice(LAST_NAMES)}"


def _facts(rng: random.Random, k: int) -> tuple[str, list[tuple[str, str]]]:
    subject = _person(rng)
    preds = rng.sample(PREDICATE_NAMES, k)
    return subject, [(p, rng.choice(PREDICATES[p][0])) for p in preds]


def _bio_sentence(subject: str, facts: list[tuple[str, str]]) -> str:
    clauses = [PREDICATES[p][1](o) for p, o in facts]
    body = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return f"{_plain(subject)} {body}."


def _triples(subject: str, facts: list[tuple[str, str]]) -> str:
    return str([f"{subject} | {p} | {o}" for p, o in facts])  # exactly Python's list repr, as in WebNLG dumps


def gen_webnlg(rng: random.Random) -> tuple[str, str]:
    subject, facts = _facts(rng, rng.choice((1, 2, 2, 3, 3)))
    return _triples(subject, facts), _bio_sentence(subject, facts)


# ---------------------------------------------------------------- samsum: chat -> one-sentence summary
PLAN_ASK = ("Do you want to go to the {v} {d}?", "Shall we go to the {v} {d}?", "I want to go to the {v} {d}. Are you in?")
PLAN_YES = ("Sure! What time?", "Yes, good idea!", "Sounds great.")
PLAN_TIME = ("Let's meet at {t}.", "At {t} is fine.")
JOIN_ASK, JOIN_OK = ("Can I come too?", "Me too, wait for me!"), ("Of course!", "Sure, join us.")
BYE = ("See you there!", "Ok, see you.", "Thanks!", "Great :)")
HELLO = ("Hi {b}!", "Hey!", "Hello {b}.")
REQ_ASK = ("{b}, can you bring the {o} {d}?", "Could you bring me the {o} {d}, {b}?", "{b}, please bring the {o} {d}.")
REQ_WHY, REQ_NEED = ("Why?", "What for?"), ("I need it for the {e}.", "It's for the {e}.")
REQ_OK = ("Ok, no problem.", "Sure, I will.", "Fine.")
LOST_ASK = ("Have you seen my {o}?", "I can't find my {o}.", "Where is my {o}?")
LOST_SAW = ("I saw it in the {r}.", "It is in the {r}, I think.", "Check the {r}, I saw it there.")
LOST_END = ("Found it, thanks!", "Thank you!", "Great, thanks.")
CANCEL = ("I can't come to the {e} {d}.", "Sorry, I will miss the {e} {d}.", "I won't make it to the {e} {d}.")
CANCEL_WHY, CANCEL_BECAUSE = ("Why not?", "Oh no, what happened?"), ("Because of {x}.", "It's because of {x}, sorry.")
CANCEL_END = ("No problem.", "Ok, next time then.", "That's a pity.")
SUMMARIES = ("{a} and {b} will go to the {v} {d}{t}.", "{b} will bring the {o} to {a} {d}{e}.",
             "{b} saw {a}'s {o} in the {r}.", "{a} will miss the {e} {d} because of {x}.", " at ", " for the ")


def _chat(rng: random.Random, names: list[str] | None = None) -> tuple[list[str], str]:
    a, b, c = names or rng.sample(FIRST_NAMES, 3)
    ch = rng.choice
    kind = rng.randrange(4)
    lines: list[tuple[str, str]] = []
    if rng.random() < 0.5:
        lines.append((a, ch(HELLO).format(b=b)))
    if kind == 0:
        v, d = ch(VENUES), ch(DAYS)
        lines += [(a, ch(PLAN_ASK).format(v=v, d=d)), (b, ch(PLAN_YES))]
        t = ch(TIMES) if rng.random() < 0.6 else ""
        if t:
            lines.append((a, ch(PLAN_TIME).format(t=t)))
        joined = rng.random() < 0.3
        if joined:
            lines += [(c, ch(JOIN_ASK)), (a, ch(JOIN_OK))]
        who = f"{a}, {b} and {c}" if joined else f"{a} and {b}"
        summary = f"{who} will go to the {v} {d}" + (f" at {t}" if t else "") + "."
    elif kind == 1:
        o, d, e = ch(OBJECTS), ch(DAYS), ch(EVENTS)
        lines.append((a, ch(REQ_ASK).format(b=b, o=o, d=d)))
        need = rng.random() < 0.5
        if need:
            lines += [(b, ch(REQ_WHY)), (a, ch(REQ_NEED).format(e=e))]
        lines.append((b, ch(REQ_OK)))
        summary = f"{b} will bring the {o} to {a} {d}" + (f" for the {e}" if need else "") + "."
    elif kind == 2:
        o, r = ch(OBJECTS), ch(ROOMS)
        lines += [(a, ch(LOST_ASK).format(o=o)), (b, ch(LOST_SAW).format(r=r)), (a, ch(LOST_END))]
        summary = f"{b} saw {a}'s {o} in the {r}."
    else:
        e, d, x = ch(EVENTS), ch(DAYS), ch(REASONS)
        lines += [(a, ch(CANCEL).format(e=e, d=d)), (b, ch(CANCEL_WHY)), (a, ch(CANCEL_BECAUSE).format(x=x))]
        if rng.random() < 0.5:
            lines.append((b, ch(CANCEL_END)))
        summary = f"{a} will miss the {e} {d} because of {x}."
    if len(lines) < 3 or (len(lines) < 6 and rng.random() < 0.4):
        lines.append((b, ch(BYE)))  # small talk that carries no information, as in real chats
    return [f"{n}: {u}" for n, u in lines], summary


def gen_samsum(rng: random.Random) -> tuple[str, str]:
    lines, summary = _chat(rng)
    return "\n".join(lines), summary


# ---------------------------------------------------------------- gigaword: news sentence -> headline
# event -> (two sentence renderings, headline); all lower-cased, tokenised, digits as '#', like Gigaword.
NEWS: dict[str, tuple[tuple[str, str], str]] = {
    "open": (("{org} said {wd} it would open a new {fac} in {city} , creating about {n} jobs .",
              "{org} plans to open a new {fac} in {city} next year , the company said {wd} ."),
             "{org} to open new {fac} in {city}"),
    "arrest": (("police in {city} arrested {n} people {wd} after a {crime} at a local {fac} , a spokesman said .",
                "{n} people were arrested in {city} on {wd} following a {crime} at a {fac} , police said ."),
               "police arrest {n} after {crime} in {city}"),
    "award": (("{person} , {aocc} from {city} , won the {award} on {wd} , organizers said .",
               "organizers said {wd} that {occ} {person} of {city} had won this year 's {award} ."),
              "{city} {occ} wins {award}"),
    "profit": (("{org} reported a net profit of {n} million dollars for the {q} quarter , up {pct} percent .",
                "net profit at {org} rose {pct} percent to {n} million dollars in the {q} quarter , it said {wd} ."),
               "{org} profit up {pct} percent"),
    "weather": (("heavy {w} hit {region} on {wd} , closing roads and schools in {city} .",
                 "roads and schools in {city} were closed {wd} as heavy {w} swept across {region} ."),
                "heavy {w} hits {region}"),
    "build": (("the mayor of {city} announced {wd} a plan to build a new {fac} by {year} .",
               "{city} will build a new {fac} by {year} , the mayor said {wd} ."),
              "{city} to build new {fac}"),
    "talks": (("{person} arrived in {city} on {wd} for two days of talks on {topic} with local leaders .",
               "local leaders will hold talks on {topic} with {person} , who arrived in {city} {wd} ."),
              "{person} arrives in {city} for {topic} talks"),
}
NEWS_KINDS = tuple(NEWS)


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "#" * len(str(rng.randint(lo, hi)))  # Gigaword masks every digit with '#'


def _news_slots(rng: random.Random) -> dict[str, str]:
    occ = _plain(rng.choice(OCCUPATIONS)).lower()
    return {"org": _plain(rng.choice(ORGS)), "wd": rng.choice(WEEKDAYS), "fac": rng.choice(FACILITIES),
            "city": rng.choice(CITIES), "region": rng.choice(REGIONS), "n": _digits(rng, 2, 900),
            "pct": _digits(rng, 2, 60), "crime": rng.choice(CRIMES), "person": _plain(_person(rng)),
            "occ": occ, "aocc": _a(occ), "award": _plain(rng.choice(AWARDS)), "q": rng.choice(QUARTERS),
            "w": rng.choice(WEATHER), "year": "####", "topic": rng.choice(TOPICS)}


def _news(rng: random.Random) -> tuple[str, str]:
    sentences, headline = NEWS[rng.choice(NEWS_KINDS)]
    slots = _news_slots(rng)
    return rng.choice(sentences).format(**slots).lower(), headline.format(**slots).lower()


def gen_gigaword(rng: random.Random) -> tuple[str, str]:
    return _news(rng)


# ---------------------------------------------------------------- qqp: question pair -> Yes / No
# intent -> (slot pool, paraphrase templates); siblings share slots but not meaning (hard negatives).
_A_OBJECTS = tuple(_a(o) for o in OBJECTS)
_A_OCCS = tuple(_a(_plain(o).lower()) for o in OCCUPATIONS)
_FULL_NAMES = tuple(f"{f} {la}" for f in FIRST_NAMES for la in LAST_NAMES)
INTENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "learn": (SKILLS, ("How can I learn {s}?", "What is the best way to learn {s}?", "How should I start learning {s}?")),
    "teach": (SKILLS, ("How can I teach {s}?", "What is the best way to teach {s}?", "How should I start teaching {s}?")),
    "visit": (CITIES, ("What are the best places to visit in {s}?", "Which places should I see in {s}?",
                       "What should I visit in {s}?")),
    "live": (CITIES, ("Is {s} a good place to live?", "What is it like to live in {s}?", "How is life in {s}?")),
    "become": (_A_OCCS, ("How do I become {s}?", "What does it take to become {s}?", "How can someone become {s}?")),
    "buy": (_A_OBJECTS, ("Where can I buy {s}?", "What is the best place to buy {s}?", "Where should I buy {s}?")),
    "repair": (_A_OBJECTS, ("How can I fix {s}?", "What is the best way to repair {s}?", "How do I repair {s}?")),
    "contact": (_FULL_NAMES, ("How can I contact {s}?", "What is the best way to reach {s}?",
                              "How do I get in touch with {s}?")),
    "meet": (_FULL_NAMES, ("How can I meet {s}?", "Where can I meet {s}?", "What is the best way to meet {s}?")),
    "cook": (DISHES, ("How do I cook {s}?", "What is a good recipe for {s}?", "How can I make {s} at home?")),
}
INTENT_NAMES = tuple(INTENTS)
SIBLINGS = {"learn": "teach", "teach": "learn", "visit": "live", "live": "visit", "buy": "repair", "repair": "buy",
            "contact": "meet", "meet": "contact"}


def _question(rng: random.Random, intent: str, slot: str, avoid: str = "") -> str:
    templates = [t for t in INTENTS[intent][1] if t.format(s=slot) != avoid]
    return rng.choice(templates).format(s=slot)


def gen_qqp(rng: random.Random) -> tuple[str, str]:
    intent = rng.choice(INTENT_NAMES)
    slot = rng.choice(INTENTS[intent][0])
    q1 = _question(rng, intent, slot)
    if rng.random() < 0.42:  # paraphrase: same meaning, different wording (~40 % after de-duplication)
        q2, label = _question(rng, intent, slot, avoid=q1), "Yes"
    elif intent in SIBLINGS and rng.random() < 0.5:  # same object, different intent
        q2, label = _question(rng, SIBLINGS[intent], slot), "No"
    else:  # same intent, different object: shares most words
        other = rng.choice([s for s in INTENTS[intent][0] if s != slot])
        q2, label = _question(rng, intent, other), "No"
    if rng.random() < 0.5:
        q1, q2 = q2, q1
    return f"{q1}-{q2}", label


GENERATORS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "qqp": gen_qqp, "gigaword": gen_gigaword, "samsum": gen_samsum, "webnlg": gen_webnlg,
}


def make_builtin_pool(n_per_task: int, seed: int) -> list[dict]:
    """n_per_task records per task, each {"instruction", "response", "task"}; deterministic; unique instructions."""
    if n_per_task < 0:
        raise ValueError("n_per_task must be >= 0")
    rng = random.Random(seed)
    seen: set[str] = set()
    pool: list[dict] = []
    for task in TASKS:
        gen, count, tries = GENERATORS[task], 0, 0
        while count < n_per_task:
            tries += 1
            if tries > 100 * n_per_task + 1000:
                raise RuntimeError(f"builtin task {task!r} cannot produce {n_per_task} unique instructions")
            instruction, response = gen(rng)
            if instruction in seen:
                continue
            seen.add(instruction)
            pool.append({"instruction": instruction, "response": response, "task": task})
            count += 1
    rng.shuffle(pool)
    return pool


# ---------------------------------------------------------------- generic pretraining text (no task pairs)
_ENTITY_POOLS = (tuple(f"{f}_{la}" for f in FIRST_NAMES for la in LAST_NAMES), PREDICATES["birthPlace"][0],
                 ORGS, AWARDS, UNIVERSITIES, OCCUPATIONS)


def _corpus_text(rng: random.Random) -> str:
    # Entities recur inside a text (across surface forms: ids, cases, renderings) so that pretraining
    # teaches copying, which every task needs; but no text pairs a task input with its output.
    kind = rng.random()
    if kind < 0.20:  # an index page: a list of entities, then the same list again (a copy-heavy text)
        ids = [rng.choice(rng.choice(_ENTITY_POOLS)) for _ in range(rng.randint(3, 6))]
        second = [_plain(e) for e in ids] if rng.random() < 0.5 else ids  # sometimes written out
        return " ; ".join(ids) + "\n" + " ; ".join(second)
    if kind < 0.45:  # wiki-style page: page id (underscored, as in URLs) then sentences about that person
        subject, facts = _facts(rng, rng.randint(2, 4))
        cut = rng.randint(1, len(facts) - 1)
        text = _bio_sentence(subject, facts[:cut]) + " " + _bio_sentence(subject, facts[cut:])
        return f"{subject}\n{text}" if rng.random() < 0.6 else text
    if kind < 0.60:  # news story: the same event told twice, or two unrelated events
        sentences, _ = NEWS[rng.choice(NEWS_KINDS)]
        if rng.random() < 0.6:
            slots = _news_slots(rng)
            return " ".join(t.format(**slots) for t in rng.sample(sentences, 2)).lower()
        return " ".join(_news(rng)[0] for _ in range(2))
    if kind < 0.64:  # headline index page: headlines of events whose stories are not here
        return "\n".join(_news(rng)[1] for _ in range(rng.randint(2, 4)))
    if kind < 0.78:  # chat logs on their own (sometimes two chats among the same people)
        names = rng.sample(FIRST_NAMES, 3)
        lines = _chat(rng, names)[0]
        if rng.random() < 0.5:
            lines += _chat(rng, rng.sample(names, 3))[0]
        return "\n".join(lines)
    if kind < 0.86:  # narrative sentences about other, unrelated chats
        return " ".join(_chat(rng)[1] for _ in range(rng.randint(1, 3)))
    if kind < 0.94:  # a FAQ list: questions only, never a judged pair
        qs = []
        for _ in range(rng.randint(2, 4)):
            intent = rng.choice(INTENT_NAMES)
            qs.append(_question(rng, intent, rng.choice(INTENTS[intent][0])))
        return " ".join(qs)
    subject, facts = _facts(rng, rng.randint(1, 3))  # a bare data record, never followed by its text
    return _triples(subject, facts)


def pretraining_corpus(n_texts: int, seed: int) -> list[str]:
    """Generic text from the same world (to pretrain the tiny LM); never an instruction followed by its response."""
    rng = random.Random(f"fedrouter-builtin-corpus/{seed}")  # a stream distinct from make_builtin_pool(seed)
    return [_corpus_text(rng) for _ in range(n_texts)]


# ---------------------------------------------------------------- vocabulary
# Mirrors the tokenizer's pre-tokenizer: split on whitespace, then isolate every ASCII punctuation char.
_TOKEN_RE = re.compile(r"[!-/:-@\[-`{-~]|[^\s!-/:-@\[-`{-~]+")


def pretokenize(text: str) -> list[str]:
    """Words and single punctuation marks, exactly as the builtin word-level tokenizer splits them."""
    return _TOKEN_RE.findall(text)


def _all_strings() -> Iterable[str]:
    lex = (FIRST_NAMES, LAST_NAMES, CITIES, REGIONS, OCCUPATIONS, ORGS, UNIVERSITIES, AWARDS, OBJECTS, VENUES,
           ROOMS, EVENTS, REASONS, DAYS, TIMES, WEEKDAYS, FACILITIES, CRIMES, QUARTERS, WEATHER, TOPICS, SKILLS,
           DISHES, GLUE, PREDICATE_NAMES, CLAUSE_WORDS, PLAN_ASK, PLAN_YES, PLAN_TIME, JOIN_ASK, JOIN_OK, BYE,
           HELLO, REQ_ASK, REQ_WHY, REQ_NEED, REQ_OK, LOST_ASK, LOST_SAW, LOST_END, CANCEL, CANCEL_WHY,
           CANCEL_BECAUSE, CANCEL_END, SUMMARIES, ("Yes", "No", "worked as a", PROMPT_TEMPLATE))
    for group in lex:
        yield from group
    for sentences, headline in NEWS.values():
        yield from sentences
        yield headline
    for _, templates in INTENTS.values():
        yield from templates


def builtin_vocabulary() -> list[str]:
    """Every token the generator, the corpus and the prompt template can produce (sorted, no specials)."""
    words: set[str] = set()
    for s in _all_strings():
        for tok in pretokenize(re.sub(r"\{\w+\}", " ", s)):  # drop format slots, keep literal words
            words.update((tok, tok.lower(), tok[:1].upper() + tok[1:]))  # news text is lower-cased
    return sorted(words)
