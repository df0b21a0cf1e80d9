"""What a new password must be: long enough, and not one of the passwords everybody tries.

Every path that sets a password goes through :func:`check` (``hirondelle account add`` and
``passwd``, reset links, the webmail's settings): NIST SP 800-63B §5.1.1.2 asks for a
minimum length and a check against "values known to be commonly-used", and for nothing
else (no composition rules, no forced rotation).

The list of common passwords (``data/common-passwords.txt``, package data) is not copied
from a leak or a published list: :func:`build_common_passwords` generates it from the
rule below, and a test checks that the bundled file is exactly its output, so anyone can
rebuild it (``python -m hirondelle.identity.password_policy > .../common-passwords.txt``)
and its origin is plain. The rule: a few hundred words and phrases that lead every
published frequency study (English and French, as the users of this server are),
keyboard rows and walks (QWERTY and AZERTY), runs and repeats of digits and letters,
dates; each word also in the shapes people give it to pass composition rules (a number,
a year or "!" appended, "@" for "a", "0" for "o"...). Matching ignores case.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources

from hirondelle.errors import Reason, Refused

# Seed words: the bases that lead every public password-frequency study, in English and
# in French, plus the names of this kind of service.
WORDS = """
password passw0rd pass passwort motdepasse mdp secret letmein welcome welcome1 hello
bonjour salut coucou admin administrator root toor user login guest test testing demo
default changeme master access shadow superman batman spiderman ironman starwars pokemon
naruto minecraft fortnite roblox dragon monkey tigger jordan michael michelle jennifer
jessica ashley daniel thomas nicolas julien camille marie pierre nathalie isabelle
sophie charlotte louis lucas hugo enzo lea manon chloe emma jade alexandre antoine
maxime kevin anthony sebastien stephane david robert william richard charlie andrew
joshua matthew justin hunter ranger harley buster ginger pepper maggie bailey sunshine
princess princesse cherie cheri chouchou doudou loulou bebe bisous amour jetaime
jetaime1 iloveyou loveyou lovely love lover trustno1 whatever freedom forever football
baseball basketball soccer hockey tennis golf rugby yankees lakers chelsea liverpool
arsenal barcelona realmadrid marseille olympique paris parissg lyon toulouse nantes
bordeaux lille nice france french english america canada london berlin soleil sunflower
flower nature summer winter autumn spring soleil123 chocolate chocolat cookie banana
cheese pizza coffee orange apple cherry qwerty azerty qwertz asdfgh zxcvbn abc abcd
abcdef abcdefg abcdefgh computer internet google facebook instagram twitter linkedin
youtube microsoft windows linux ubuntu debian apple123 samsung nokia iphone android
office office365 outlook gmail hotmail yahoo orange sfr free bouygues mail email webmail
courrier messagerie hirondelle swallow server serveur postmaster killer hacker matrix
ninja shadow1 silver golden gold diamond crystal mercedes ferrari porsche bmw audi
renault peugeot citroen toyota honda yamaha harley1 corvette mustang cowboy cowboys
eagles steelers dallas packers patriots warriors raiders giants jesus christ god angel
angels heaven blessed faith hope family friends friend buddy babygirl baby babe sweety
sweetie honey darling pretty beautiful sexy hottie mother father mommy daddy maman papa
famille enfant enfants azerty123 nounours vacances bienvenue merci chien chat lapin
poisson cheval tigre lion loup renard ours licorne unicorn dolphin panther jaguar tiger
lion123 wolf fox bear eagle falcon phoenix thunder lightning storm rainbow star stars
moon galaxy universe planet secret1 private prive personal personnel confidential
security securite safety
""".split()  # noqa: SIM905 (a list literal would take 400 lines)

# Rows and walks of the keyboards French and English users type on.
KEYBOARD = [
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
    "qwertzuiop",
    "1qaz2wsx",
    "1qaz2wsx3edc",
    "qazwsx",
    "qazwsxedc",
    "zaq12wsx",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "1a2z3e4r",
    "1a2z3e4r5t",
    "q1w2e3r4",
    "a1z2e3r4",
    "qweasdzxc",
    "azeqsdwxc",
    "poiuytreza",
    "poiuytrewq",
    "mnbvcxz",
    "0987654321",
    "147258369",
    "159753",
    "741852963",
    "963852741",
    "123qwe",
    "123aze",
    "qwe123",
    "aze123",
    "asd123",
    "zxc123",
]
SUFFIXES = ["", "1", "12", "123", "1234", "12345", "!", "1!", "123!", "01", "00", "69", "7", "*"]
LEET = str.maketrans({"a": "@", "o": "0", "e": "3", "i": "1", "s": "$"})
YEARS = range(1950, 2031)
# Years people append to a word: their birth years and the recent ones.
WORD_YEARS = range(1990, 2027)


def _shapes(word: str) -> set[str]:
    out = {word + suffix for suffix in SUFFIXES}
    for form in (word.translate(LEET), word.replace("a", "@"), word.replace("o", "0")):
        out.update(form + suffix for suffix in ("", "1", "!", "123"))
    return out


def build_common_passwords() -> list[str]:
    """The bundled list, rebuilt from the rule in the module docstring (sorted, lowercase)."""
    found: set[str] = set()
    for word in WORDS:
        found |= _shapes(word)
        found.update(f"{word}{year}" for year in WORD_YEARS)
        found.add(word + word)
    for row in KEYBOARD:
        # Every prefix of a row of 4 characters or more, and the row typed twice.
        found.update(row[:n] for n in range(4, len(row) + 1))
        found |= _shapes(row)
        found.add(row + row)
    digits = "01234567890"
    for start in range(10):
        for length in range(4, 11):
            run = (digits[start:] + digits[:start])[:length]
            found.add(run)
            found.add(run[::-1])
    for length in range(4, 17):
        found.update(c * length for c in "0123456789abcdefghijklmnopqrstuvwxyz")
    found.update(
        "".join(pair * (length // 2)) for pair in ("12", "69", "ab", "01") for length in (6, 8, 10)
    )
    # Dates as people type them: DDMMYYYY and YYYYMMDD of every first of the month, and
    # the years themselves.
    for year in YEARS:
        found.add(str(year))
        for month in range(1, 13):
            found.add(f"01{month:02d}{year}")
            found.add(f"{year}{month:02d}01")
    return sorted(p for p in found if len(p) >= 4)


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("hirondelle.identity").joinpath("data/common-passwords.txt")
    return frozenset(line for line in text.read_text("utf-8").splitlines() if line)


class WeakPassword(Refused):
    """The password is refused; ``rule`` is "too-short" or "common" (the session API's
    ``reason``), the message says why in English and French."""

    def __init__(self, rule: str, min_length: int) -> None:
        if rule == "too-short":
            message = (
                f"password too short: at least {min_length} characters / "
                f"mot de passe trop court : au moins {min_length} caractères"
            )
        else:
            message = (
                "this password is among the most common ones: choose another / "
                "ce mot de passe fait partie des plus courants : choisissez-en un autre"
            )
        super().__init__(Reason.INVALID, message)
        self.rule = rule
        self.min_length = min_length


def check(password: str, *, min_length: int) -> None:
    """Refuse ``password`` (:class:`WeakPassword`) if it is shorter than ``min_length``
    characters (Unicode code points, NFC not required: the user typed what they typed)
    or one of the common passwords, ignoring case."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from a hostile JSON body, or a terminal in the wrong encoding)
        # can be neither hashed nor typed again.
        raise Refused(
            Reason.INVALID,
            "the password is not valid text / le mot de passe n'est pas un texte valide",
        ) from None
    if len(password) < min_length:
        raise WeakPassword("too-short", min_length)
    common = common_passwords()
    if password.casefold() in common or password.strip().casefold() in common:
        raise WeakPassword("common", min_length)


if __name__ == "__main__":
    sys.stdout.write("".join(f"{p}\n" for p in build_common_passwords()))
