"""Tiny Tales: the corpus this project writes itself (``data/tinytales.txt``).

Short, simple stories from a seeded procedural grammar: no text was downloaded or copied to
make them, and the same seed gives the same bytes. The stories reuse a few hundred words in
a few dozen sentence patterns (characters, places, objects, dialogue, a small plot and a
moral), so a tiny character-level model trained for minutes writes recognisable stories.

    python -m tinyllm.lab.tinytales            # regenerate data/tinytales.txt
    python -m tinyllm.lab.tinytales --check    # does the shipped file equal the generator's?
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..checkpoint import atomic_write
from ..data.corpora import DATA_DIR, TINYTALES_FILENAME, TINYTALES_N_CHARS, TINYTALES_SEED

__all__ = ["generate_corpus", "main"]


# --------------------------------------------------------------------------------------------
# Tiny Tales: the story grammar
# --------------------------------------------------------------------------------------------
#
# Everything random goes through _Writer.pick / _Writer.chance, which call only
# random.Random.random(): the one method whose output Python promises to keep the same for
# the same integer seed across versions. (choice, shuffle and randrange may change.) The
# word lists are lists, never sets, whose order could vary between runs.

_GIRL_NAMES = [
    "Lily", "Mia", "Anna", "Zoe", "Ella", "Rosa", "Nina", "Lucy", "Emma", "Sara",
    "Ruby", "Maya", "Ivy", "Hana", "Amira", "Priya", "Chloe", "Grace", "Tara", "Wendy",
]
_BOY_NAMES = [
    "Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Omar", "Finn", "Noah", "Luca",
    "Kai", "Theo", "Ravi", "Hugo", "Eli", "Owen", "Pablo", "Felix", "Jonas", "Yusuf",
]
_PET_NAMES = [
    "Pip", "Bella", "Rusty", "Coco", "Daisy", "Milo", "Bubbles", "Sunny",
    "Pepper", "Oscar", "Tilly", "Buster", "Hazel", "Biscuit", "Clover", "Ziggy",
]
_ANIMAL_KINDS = [
    "dog", "cat", "rabbit", "bird", "fox", "bear", "duck", "frog",
    "mouse", "owl", "turtle", "pony", "squirrel", "lamb",
]
_SIZES = ["little", "small", "big", "tiny", "young"]
_TRAITS = ["kind", "happy", "curious", "brave", "shy", "clever", "funny", "gentle", "cheerful"]
_COLOURS = ["brown", "white", "black", "grey", "orange", "spotted", "fluffy"]

# (place, preposition for being there): "in the park", "on the beach". Going there is
# always "to": "went to the beach".
_OUTDOOR_PLACES = [
    ("the park", "in"), ("the forest", "in"), ("the beach", "on"), ("the garden", "in"),
    ("the farm", "on"), ("the lake", "by"), ("the hill", "on"), ("the meadow", "in"),
    ("the river", "by"), ("the school yard", "in"), ("the village square", "in"),
]
_PLACES = _OUTDOOR_PLACES + [
    ("the library", "in"), ("the market", "at"), ("the old barn", "in"), ("the zoo", "at"),
]
# (object, adjectives that suit it)
_OBJECTS = [
    ("ball", ["red", "blue", "bouncy", "big"]),
    ("kite", ["red", "long", "yellow", "paper"]),
    ("key", ["shiny", "golden", "old", "tiny"]),
    ("box", ["little", "wooden", "secret", "blue"]),
    ("hat", ["funny", "green", "big", "straw"]),
    ("book", ["old", "thick", "magic", "picture"]),
    ("shell", ["pink", "pretty", "shiny", "spotted"]),
    ("stone", ["smooth", "round", "shiny", "blue"]),
    ("map", ["old", "torn", "secret", "folded"]),
    ("boat", ["toy", "little", "paper", "wooden"]),
    ("cup", ["blue", "tiny", "golden", "chipped"]),
    ("bell", ["silver", "little", "shiny", "old"]),
    ("feather", ["long", "blue", "soft", "bright"]),
    ("coin", ["gold", "shiny", "old", "lucky"]),
    ("scarf", ["warm", "red", "striped", "soft"]),
    ("drum", ["little", "red", "loud", "toy"]),
]
# Activities after "loved to"; "{his}" is filled with the character's possessive pronoun.
_ACTIVITIES = [
    "play outside", "run in the grass", "sing songs", "look at the stars",
    "build sand castles", "paint pictures", "read books", "climb trees",
    "jump in puddles", "pick flowers", "watch the clouds", "dance in the sun",
    "help {his} mom in the kitchen", "play hide and seek", "ride {his} bike",
    "draw animals", "count the birds", "splash in the water", "tell funny jokes",
]
_TIMES = [
    "One day", "One sunny morning", "One rainy afternoon", "One cold winter day",
    "One warm summer evening", "One bright spring morning", "Early one morning",
    "One windy day", "After lunch one day",
]
_GROWN_UPS = ["Mom", "Dad", "Grandma", "Grandpa"]
_HIDING_SPOTS = [
    "under the bench", "behind the big tree", "near the pond", "in the tall grass",
    "inside the old shed", "under a pile of leaves", "next to the gate", "by the flower bed",
]
_FEARS = [
    ("the dark", "at night, when the lights went out"),
    ("big waves", "at the beach, when the waves came in"),
    ("the thunder", "when a storm came over the hill"),
    ("the tall slide", "at the park, at the top of the ladder"),
    ("deep water", "at the lake, when everyone went swimming"),
    ("the big dog next door", "every time it barked"),
]
_TREATS = ["cookies", "apples", "strawberries", "cupcakes", "grapes", "cherries", "plums"]
_ANIMALS_IN_TROUBLE = [
    ("a little bird", "with a hurt wing", "the bird"),
    ("a kitten", "stuck high up in a tree", "the kitten"),
    ("a duckling", "that had lost its mother", "the duckling"),
    ("a puppy", "stuck in the mud", "the puppy"),
    ("a turtle", "lying on its back", "the turtle"),
    ("a baby squirrel", "that had fallen from its nest", "the squirrel"),
]
_PROJECTS = [
    ("build a tower of blocks", "the tower", "it fell down with a crash"),
    ("bake a cake", "the cake", "it came out of the oven all black"),
    ("make a sand castle", "the sand castle", "a big wave washed it away"),
    ("build a fort of pillows", "the fort", "the dog jumped on it and it fell over"),
    ("paint a big picture", "the picture", "the paint spilled all over it"),
    ("build a little boat", "the boat", "it filled with water and sank"),
]
_SHELTERS = ["under a big tree", "into the old barn", "under the bridge", "into a small cave"]
_EMOTIONS_GOOD = ["happy", "proud", "glad", "excited"]


@dataclass(frozen=True)
class _Character:
    name: str
    description: str  # with its article: "a curious little girl", "a small brown fox"
    he: str  # subject pronoun: she / he
    him: str  # object pronoun: her / him
    his: str  # possessive: her / his


def _capitalize(sentence: str) -> str:
    """Upper-case the first letter only ("she ran." -> "She ran."; str.capitalize would
    lower-case the names inside)."""
    return sentence[:1].upper() + sentence[1:]


def _title_case(phrase: str) -> str:
    """"the old barn" -> "the Old Barn": capitalise each word except short ones."""
    small_words = {"the", "a", "an", "and", "of", "in", "on", "at", "by", "to", "for"}
    words = phrase.split()
    return " ".join(w if w in small_words else w.capitalize() for w in words)


def _with_article(noun_phrase: str) -> str:
    """"apple" -> "an apple", "red ball" -> "a red ball"."""
    return ("an " if noun_phrase[0] in "aeiou" else "a ") + noun_phrase


class _Writer:
    """Writes one story at a time from a random.Random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence):
        return options[int(self.rng.random() * len(options))]

    def pick_distinct(self, options: Sequence, count: int) -> list:
        """`count` different elements of `options`, in random order."""
        remaining = list(options)
        return [remaining.pop(int(self.rng.random() * len(remaining))) for _ in range(count)]

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    # ---- characters -----------------------------------------------------------------------

    def child(self, exclude: Sequence[str] = ()) -> _Character:
        is_girl = self.chance(0.5)
        names = [n for n in (_GIRL_NAMES if is_girl else _BOY_NAMES) if n not in exclude]
        noun = "girl" if is_girl else "boy"
        adjective = self.pick(_TRAITS) if self.chance(0.6) else self.pick(_SIZES)
        description = _with_article(f"{adjective} little {noun}" if adjective in _TRAITS
                                     else f"{adjective} {noun}")
        pronouns = ("she", "her", "her") if is_girl else ("he", "him", "his")
        return _Character(self.pick(names), description, *pronouns)

    def animal(self, exclude: Sequence[str] = ()) -> _Character:
        names = [n for n in _PET_NAMES if n not in exclude]
        description = _with_article(
            f"{self.pick(_SIZES)} {self.pick(_COLOURS)} {self.pick(_ANIMAL_KINDS)}"
        )
        pronouns = ("she", "her", "her") if self.chance(0.5) else ("he", "him", "his")
        return _Character(self.pick(names), description, *pronouns)

    def character(self, exclude: Sequence[str] = ()) -> _Character:
        return self.child(exclude) if self.chance(0.7) else self.animal(exclude)

    def cast(self) -> tuple[_Character, _Character]:
        hero = self.character()
        friend = self.character(exclude=[hero.name])
        return hero, friend

    # ---- shared sentences -----------------------------------------------------------------

    def introduction(self, hero: _Character) -> str:
        place = self.pick(_PLACES)[0]
        opening = self.pick([
            f"Once upon a time, there was {hero.description} named {hero.name}.",
            f"There once was {hero.description} named {hero.name}.",
            f"Long ago, in a small village, there lived {hero.description} named {hero.name}.",
            f"In a little house near {place}, there lived {hero.description} named {hero.name}.",
            f"{hero.name} was {hero.description}.",
        ])
        activity = self.pick(_ACTIVITIES).format(his=hero.his)
        liking = self.pick([
            f"{_capitalize(hero.he)} loved to {activity}.",
            f"Every day, {hero.he} liked to {activity}.",
            f"More than anything, {hero.name} loved to {activity}.",
        ])
        return f"{opening} {liking}"

    def friend_sentence(self, hero: _Character, friend: _Character) -> str:
        return self.pick([
            f"{hero.name} had a best friend named {friend.name}, {friend.description}.",
            f"{_capitalize(hero.his)} best friend was {friend.name}, {friend.description}.",
            f"{hero.name} and {friend.name} were good friends.",
        ])

    def ending(self, hero: _Character, friend: _Character, moral: str) -> str:
        closing = self.pick([
            f"From that day on, {hero.name} and {friend.name} were the best of friends.",
            f"{hero.name} smiled. It was the best day ever.",
            f"That night, {hero.name} went to sleep with a big smile.",
            "And they all lived happily ever after.",
            f"{hero.name} and {friend.name} laughed and went home together.",
        ])
        lesson = self.pick([
            f"{hero.name} learned that {moral}.",
            f"It was a good lesson: {moral}.",
            "",
        ])
        return f"{closing} {lesson}".strip()

    # ---- plots: each returns (title, paragraphs) ------------------------------------------

    def found_object(self) -> tuple[str, list[str]]:
        hero, friend = self.cast()
        thing, adjectives = self.pick(_OBJECTS)
        adjective = self.pick(adjectives)
        place, preposition = self.pick(_PLACES)
        spot = self.pick(_HIDING_SPOTS)
        title = f"{hero.name} and the {adjective.capitalize()} {thing.capitalize()}"
        paragraphs = [
            self.introduction(hero) + " " + self.friend_sentence(hero, friend),
            f"{self.pick(_TIMES)}, {hero.name} was playing {preposition} {place}. "
            f"{_capitalize(hero.he)} saw something {spot}. "
            f"It was {_with_article(adjective + ' ' + thing)}!",
            f"\"{self.pick(['Wow', 'Look', 'Oh my', 'Hooray'])}!\" said {hero.name}. "
            f"\"{friend.name}, come and see what I found!\" "
            f"{friend.name} came running. "
            f"\"{self.pick(['What a pretty', 'What a funny', 'What a strange'])} {thing},\" "
            f"said {friend.name}. \"Who does it belong to?\"",
        ]
        if self.chance(0.5):
            owner = self.pick(["an old man", "a little girl", "a tall woman", "a small boy"])
            paragraphs.append(
                f"They looked around and saw {owner} who looked very sad. "
                f"\"Is this yours?\" asked {hero.name}. "
                f"\"Yes, it is! I looked for it all day. Thank you so much!\" "
                f"{hero.name} felt {self.pick(_EMOTIONS_GOOD)} inside."
            )
            moral = "it is good to be honest and give back what is not yours"
        else:
            paragraphs.append(
                f"Nobody came to take the {thing}. "
                f"\"Let's keep it safe until someone asks for it,\" said {friend.name}. "
                f"So they took the {thing} home and put it on the shelf, "
                f"and every day they played a new game with it."
            )
            moral = "small things can bring a lot of joy"
        paragraphs.append(self.ending(hero, friend, moral))
        return title, paragraphs

    def lost_object(self) -> tuple[str, list[str]]:
        hero, friend = self.cast()
        thing, adjectives = self.pick(_OBJECTS)
        adjective = self.pick(adjectives)
        place = self.pick(_PLACES)[0]
        first_spot, second_spot, last_spot = self.pick_distinct(_HIDING_SPOTS, 3)
        title = f"The Lost {thing.capitalize()}"
        favourite = _with_article(f"{adjective} {thing}")
        paragraphs = [
            self.introduction(hero)
            + f" {_capitalize(hero.he)} had {favourite} that {hero.he} took everywhere.",
            f"{self.pick(_TIMES)}, {hero.name} went to {place}. "
            f"When {hero.he} wanted to go home, the {thing} was gone! "
            f"{hero.name} felt {self.pick(['sad', 'worried', 'upset'])} and began to cry.",
            f"Just then, {friend.name} came by. \"Why are you crying?\" asked {friend.name}. "
            f"\"I lost my {adjective} {thing},\" said {hero.name}. "
            f"\"Don't worry, I will help you find it,\" said {friend.name}.",
            f"They looked {first_spot}, but it was not there. "
            f"They looked {second_spot}, but it was not there either. "
            f"At last, {friend.name} looked {last_spot}. \"Here it is!\" {friend.he} shouted.",
            f"{hero.name} hugged {friend.name}. \"Thank you! You are a true friend.\" "
            + self.ending(hero, friend, self.pick([
                "friends help each other", "it is good to ask for help",
                "you should never give up",
            ])),
        ]
        return title, paragraphs

    def fear(self) -> tuple[str, list[str]]:
        hero = self.child()
        friend = self.character(exclude=[hero.name])
        grown_up = self.pick(_GROWN_UPS)
        fear, when = self.pick(_FEARS)
        title = f"{hero.name} Is Brave"
        paragraphs = [
            self.introduction(hero) + f" But {hero.name} was afraid of {fear}.",
            f"{_capitalize(hero.he)} felt scared {when}. "
            f"\"I don't like {fear},\" {hero.he} whispered to {grown_up}.",
            f"{grown_up} gave {hero.him} a hug. \"It is okay to be scared,\" said {grown_up}. "
            f"\"{self.pick(['Take a deep breath', 'Hold my hand', 'Count to ten with me'])}, "
            f"and you will see.\"",
            f"{friend.name} came too. \"I will stay with you,\" said {friend.name}. "
            f"{hero.name} took a deep breath and tried. It was not so bad after all!",
            f"\"I did it!\" said {hero.name}. {grown_up} and {friend.name} cheered. "
            + self.ending(hero, friend, self.pick([
                "being brave does not mean you are never scared",
                "you can do hard things with a little help",
            ])),
        ]
        return title, paragraphs

    def sharing(self) -> tuple[str, list[str]]:
        hero, friend = self.cast()
        treat = self.pick(_TREATS)
        count = self.pick(["two", "four", "six", "eight", "ten"])
        place, preposition = self.pick(_PLACES)
        title = f"{hero.name} Shares"
        paragraphs = [
            self.introduction(hero),
            f"{self.pick(_TIMES)}, {hero.name} had {count} {treat} in a basket. "
            f"{_capitalize(hero.he)} sat down {preposition} {place} to eat them.",
            f"Then {hero.he} saw {friend.name}, who had nothing. "
            f"{friend.name} looked at the {treat} and said, \"Those look so good.\"",
            f"{hero.name} thought for a moment. {_capitalize(hero.he)} wanted all the {treat}. "
            f"But then {hero.he} said, \"Here, let's share them!\" "
            f"{hero.name} gave half of the {treat} to {friend.name}.",
            f"\"Thank you!\" said {friend.name}. They ate the {treat} together and laughed. "
            + self.ending(hero, friend, self.pick([
                "sharing makes everyone happy", "it feels good to be kind",
            ])),
        ]
        return title, paragraphs

    def rainy_trip(self) -> tuple[str, list[str]]:
        hero, friend = self.cast()
        place, preposition = self.pick(_OUTDOOR_PLACES)
        shelter = self.pick(_SHELTERS)
        plan = self.pick(["have a picnic", "fly a kite", "play ball", "look for bugs"])
        title = f"A Rainy Day {preposition} {_title_case(place)}"
        paragraphs = [
            self.introduction(hero) + " " + self.friend_sentence(hero, friend),
            f"{self.pick(_TIMES)}, {hero.name} and {friend.name} went to {place} "
            f"to {plan}. But soon the sky turned dark and grey.",
            f"\"Oh no, it is going to rain!\" said {friend.name}. Big drops began to fall. "
            f"They ran {shelter} and waited.",
            f"\"I am cold,\" said {hero.name}. {friend.name} sat close to {hero.him}, "
            f"and they told stories until the rain stopped.",
            f"When they came out, they saw a big rainbow in the sky. "
            f"\"Look, a rainbow!\" shouted {hero.name}. "
            + self.ending(hero, friend, self.pick([
                "a bad day can turn into a good one",
                "after the rain comes the sun",
            ])),
        ]
        return title, paragraphs

    def helping_animal(self) -> tuple[str, list[str]]:
        hero = self.child()
        friend = self.character(exclude=[hero.name])
        animal, trouble, the_animal = self.pick(_ANIMALS_IN_TROUBLE)
        grown_up = self.pick(_GROWN_UPS)
        place, preposition = self.pick(_OUTDOOR_PLACES)
        title = f"{hero.name} Helps {_title_case(the_animal)}"
        paragraphs = [
            self.introduction(hero),
            f"{self.pick(_TIMES)}, {hero.name} was walking {preposition} {place} with "
            f"{friend.name}. They found {animal} {trouble}.",
            f"\"Poor thing,\" said {hero.name}. \"We have to help it.\" "
            f"{friend.name} ran to get {grown_up}.",
            f"{grown_up} came and helped them. They were very gentle and careful. "
            f"Soon {the_animal} was safe.",
            f"{_capitalize(the_animal)} looked at {hero.name} as if to say thank you. "
            + self.ending(hero, friend, self.pick([
                "it is good to be kind to animals", "even small helpers can do big things",
            ])),
        ]
        return title, paragraphs

    def making_something(self) -> tuple[str, list[str]]:
        hero, friend = self.cast()
        plan, the_thing, accident = self.pick(_PROJECTS)
        title = f"{hero.name} and {friend.name} Try Again"
        paragraphs = [
            self.introduction(hero) + " " + self.friend_sentence(hero, friend),
            f"{self.pick(_TIMES)}, {hero.name} said, \"Let's {plan}!\" "
            f"{friend.name} said yes, and they worked very hard.",
            f"But then {accident}. {hero.name} was so sad. \"It is ruined,\" {hero.he} said.",
            f"\"Let's try again,\" said {friend.name}. \"This time we will be more careful.\" "
            f"So they tried again, slowly and together.",
            f"This time {the_thing} was even better than before. "
            f"They felt {self.pick(_EMOTIONS_GOOD)}. "
            + self.ending(hero, friend, self.pick([
                "if at first you fail, you can try again",
                "working together makes things better",
            ])),
        ]
        return title, paragraphs

    def new_friend(self) -> tuple[str, list[str]]:
        hero = self.child()
        friend = self.child(exclude=[hero.name])
        place = self.pick(_PLACES)[0]
        game = self.pick(["tag", "hide and seek", "ball", "jump rope", "pretend pirates"])
        girl_or_boy = friend.description.split()[-1]
        title = f"A New Friend for {hero.name}"
        paragraphs = [
            f"{hero.name} was new in town. {_capitalize(hero.he)} did not know anyone, "
            f"and {hero.he} felt a little lonely.",
            f"{self.pick(_TIMES)}, {hero.name} went to {place}. "
            f"{_capitalize(hero.he)} saw {friend.description} sitting alone.",
            f"{hero.name} walked over and said, \"Hello! My name is {hero.name}. "
            f"What is your name?\" \"I am {friend.name},\" said the {girl_or_boy}. "
            f"\"Do you want to play {game}?\" asked {hero.name}.",
            f"{friend.name} smiled. They played {game} all afternoon "
            f"until the sun went down.",
            self.ending(hero, friend, self.pick([
                "saying hello can make a new friend", "a smile is a good way to start",
            ])),
        ]
        return title, paragraphs

    def story(self) -> str:
        """One story: a title line, then one line per paragraph."""
        plot = self.pick([
            self.found_object, self.lost_object, self.fear, self.sharing,
            self.rainy_trip, self.helping_animal, self.making_something, self.new_friend,
        ])
        title, paragraphs = plot()
        return "\n".join([title, *paragraphs])


def generate_corpus(seed: int = TINYTALES_SEED, n_chars: int = TINYTALES_N_CHARS) -> str:
    """Write short stories from a seeded grammar until the text has at least `n_chars`.

    The text is plain ASCII: stories separated by a blank line, each a title line followed
    by one line per paragraph. It stops after the story that reaches `n_chars`, so it ends
    with a whole story (and a final newline).

    Args:
        seed: the same seed gives the same text, byte for byte, on any Python version.
        n_chars: minimum length in characters (= bytes, as the text is ASCII).
    """
    if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be a positive integer, got {n_chars!r}")
    writer = _Writer(random.Random(seed))
    stories: list[str] = []
    length = 0
    while length < n_chars:
        story = writer.story()
        stories.append(story)
        length += len(story) + 2  # the story and the blank line after it
    return "\n\n".join(stories) + "\n"


# --------------------------------------------------------------------------------------------
# python -m tinyllm.lab.tinytales: regenerate (or check) the shipped corpus
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyllm.lab.tinytales",
        description="Regenerate the shipped Tiny Tales corpus (data/tinytales.txt).",
    )
    parser.add_argument("--seed", type=int, default=TINYTALES_SEED)
    parser.add_argument("--n-chars", type=int, default=TINYTALES_N_CHARS)
    parser.add_argument("--output", type=Path, default=DATA_DIR / TINYTALES_FILENAME)
    parser.add_argument(
        "--check", action="store_true",
        help="do not write; exit with status 1 if the file differs from the generator's output",
    )
    arguments = parser.parse_args(argv)

    data = generate_corpus(arguments.seed, arguments.n_chars).encode("ascii")
    digest = hashlib.sha256(data).hexdigest()
    if arguments.check:
        matches = arguments.output.is_file() and arguments.output.read_bytes() == data
        print(f"{arguments.output}: {'matches' if matches else 'DIFFERS from'} the generator "
              f"(seed {arguments.seed}, {len(data):,} bytes, sha256 {digest})")
        return 0 if matches else 1
    atomic_write(os.fspath(arguments.output), data)
    print(f"wrote {arguments.output}: {len(data):,} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
