"""Letters, as a Python environment: how often does a letter occur in a word?
A wrong answer gets a second try, so the episode's state lives across turns."""

import random

WORDS = ["banana", "committee", "mississippi", "bookkeeper", "parallel", "success", "letter", "assess"]


def tasks(split, seed, n):
    pairs = [(w, l) for w in WORDS for l in sorted(set(w))]
    pairs = [p for i, p in enumerate(pairs) if (i % 5 == 0) == (split == "test")]  # held out: every 5th
    random.Random(seed).shuffle(pairs)
    return [{"word": w, "letter": l, "count": w.count(l)} for w, l in pairs[:n]]


def reset(task, seed):
    global count, tries
    count, tries = task["count"], 0
    return f"How many times does '{task['letter']}' occur in \"{task['word']}\"? Answer with the number only."


def step(action):
    global tries
    tries += 1
    done = action.strip() == str(count) or tries == 2
    return {"observation": None if done else "No, try again.", "done": done, "info": {"tries": tries}}


def reward(task, transcript):
    answers = [m["content"] for m in transcript if m["role"] == "assistant"]
    return float(bool(answers) and answers[-1].strip() == str(task["count"]))


def gold(task):
    return str(task["count"])
