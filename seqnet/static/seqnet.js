// Classify reviews in the browser with a bundle from `seqnet export --format onnx`.
//
// The tokenizer follows the bundle's tokenizer.json step by step, so it cannot drift from
// seqnet's Python code; the network runs in onnxruntime-web (WebAssembly), installed beside
// this file by `npm install` (package.json pins it). Nothing leaves the page.

const ONNX_RUNTIME = "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
const KNOWN_TOKENIZER = "seqnet-words-v2";
const BATCH_SIZE = 256; // reviews per model call
export const DECISION_THRESHOLD = 0.5; // seqnet labels a review positive from 0.5

/** Decode HTML character references as Python's html.unescape does (the HTML5 rules). */
function unescapeHtml(text) {
  // A textarea's content is parsed as RCDATA: references are decoded, tags are not. With
  // "<" escaped first, no text can end the textarea early.
  const box = document.createElement("textarea");
  box.innerHTML = text.replaceAll("<", "&lt;");
  return box.value;
}

function regex(pattern, ignoreCase) {
  // "u": match code points, as Python does on str, not UTF-16 halves; and read \p{...}.
  return new RegExp(pattern, "gu" + (ignoreCase ? "i" : ""));
}

/** A function replacing each code point found in `table` (an object) by its value. */
function caseFold(table) {
  const folds = new Map(Object.entries(table));
  // Per code point, from seqnet's table: toLowerCase() is no case fold ("ß" stays "ß"), and
  // its data is the browser's Unicode version, not Python's.
  return (text) => Array.from(text, (character) => folds.get(character) ?? character).join("");
}

/** One step of tokenizer.json's "steps" as a function of text (the last one gives tokens). */
export function compileStep(step) {
  if ("replace" in step) {
    const pattern = regex(step.replace, step.ignore_case);
    return (text) => text.replaceAll(pattern, () => step.with); // a function: "$" is no syntax
  }
  if ("unescape_html_entities" in step) return unescapeHtml;
  if ("normalize" in step) return (text) => text.normalize(step.normalize);
  if ("case_fold" in step) return caseFold(step.case_fold);
  if ("find_all" in step) {
    const pattern = regex(step.find_all, step.ignore_case);
    return (text) => text.match(pattern) ?? [];
  }
  throw new Error(`tokenizer.json has a step this page does not know: ${JSON.stringify(step)}`);
}

/** Raw text -> int32 ids of tokenizer.json's length, exactly as seqnet encodes it. */
export class Tokenizer {
  constructor(spec, vocabulary) {
    if (spec.format !== "seqnet.tokenizer" || spec.tokenizer !== KNOWN_TOKENIZER) {
      throw new Error(
        `This page reads tokenizer ${KNOWN_TOKENIZER}, the bundle has ${spec.tokenizer}: ` +
          "export the model again with this seqnet's page.",
      );
    }
    this.spec = spec;
    this.steps = spec.steps.map(compileStep);
    this.ids = new Map(); // a Map, not an object: a word such as "constructor" is no key
    vocabulary.words.forEach((word, rank) => {
      const id = rank + spec.ids.first_word_id;
      if (id < spec.num_words) this.ids.set(word, id);
    });
  }

  /** The word tokens of one raw review. */
  tokenize(text) {
    return this.steps.reduce((value, step) => step(value), text);
  }

  /** Ids of one review, padded and truncated in front: Int32Array(sequence_length). */
  encode(text) {
    const { ids, sequence_length: length } = this.spec;
    const unknown = ids.out_of_vocabulary;
    const encoded = [ids.start, ...this.tokenize(text).map((word) => this.ids.get(word) ?? unknown)];
    const row = new Int32Array(length).fill(ids.padding);
    const kept = encoded.slice(-length); // a long review keeps its last ids
    row.set(kept, length - kept.length); // padding goes in front
    return row;
  }
}

async function fetchJson(base, name) {
  const response = await fetch(new URL(name, base));
  if (!response.ok) throw new Error(`Could not read ${name} (${response.status}).`);
  return response.json();
}

async function loadOnnxRuntime() {
  try {
    const ort = await import(ONNX_RUNTIME);
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; a static server lacks it
    return ort;
  } catch (error) {
    throw new Error(
      "onnxruntime-web is not installed beside this page: run `npm install` in the bundle " +
        `folder, then serve it again (${error.message}).`,
    );
  }
}

/** The exported model with its tokenizer and classes: probabilities, labels and scores for
 * raw texts, as seqnet gives them. */
export class Classifier {
  static async load(base = new URL(".", document.baseURI)) {
    const [ort, spec, vocabulary, reference] = await Promise.all([
      loadOnnxRuntime(),
      fetchJson(base, "tokenizer.json"),
      fetchJson(base, "vocabulary.json"),
      fetchJson(base, "reference.json"),
    ]);
    const session = await ort.InferenceSession.create(new URL("model.onnx", base).href, {
      executionProviders: ["wasm"],
    });
    return new Classifier(ort, session, new Tokenizer(spec, vocabulary), reference);
  }

  constructor(ort, session, tokenizer, reference) {
    this.ort = ort;
    this.session = session;
    this.tokenizer = tokenizer;
    this.reference = reference;
    // The class names in index order; a bundle of seqnet 0.2 names none: IMDB's.
    this.classes = reference.classes ?? ["negative", "positive"];
  }

  /** Ids of each text, and how many of them are words the vocabulary knows. */
  encodeAll(texts) {
    const firstWord = this.tokenizer.spec.ids.first_word_id;
    const rows = texts.map((text) => this.tokenizer.encode(text));
    const known = rows.map((row) => row.reduce((count, id) => count + (id >= firstWord), 0));
    return { rows, known };
  }

  /** Each class's probability for each text: one array of `classes.length` per text. */
  async predictProbabilities(texts) {
    return (await this.run(this.encodeAll(texts).rows)).probabilities;
  }

  async run(rows) {
    const length = this.tokenizer.spec.sequence_length;
    const units = this.classes.length === 2 ? 1 : this.classes.length;
    const probabilities = [];
    for (let start = 0; start < rows.length; start += BATCH_SIZE) {
      const batch = rows.slice(start, start + BATCH_SIZE);
      const ids = new Int32Array(batch.length * length);
      batch.forEach((row, i) => ids.set(row, i * length));
      const input = new this.ort.Tensor("int32", ids, [batch.length, length]); // (batch, 400)
      const outputs = await this.session.run({ [this.reference.input.name]: input });
      const flat = outputs[this.reference.output.name].data; // (batch, units) flat
      for (let i = 0; i < batch.length; i++) {
        const row = Array.from(flat.subarray(i * units, (i + 1) * units));
        // Two classes: one sigmoid unit, the probability of the second class.
        probabilities.push(units === 1 ? [1 - row[0], row[0]] : row);
      }
    }
    return { probabilities };
  }

  /** The index of the label: two classes, the second from the threshold; more, the most
   * probable (the first of ties), as seqnet's Task.decide. */
  decide(probabilities) {
    if (probabilities.length === 2) return probabilities[1] >= DECISION_THRESHOLD ? 1 : 0;
    return probabilities.reduce((best, p, i) => (p > probabilities[best] ? i : best), 0);
  }

  /** `{label, score, known_words, probabilities: {class: p}}` per text, as `seqnet serve`
   * answers. */
  async predict(texts) {
    const { rows, known } = this.encodeAll(texts);
    const { probabilities } = await this.run(rows);
    return probabilities.map((row, i) => {
      const index = this.decide(row);
      const named = Object.fromEntries(this.classes.map((name, k) => [name, row[k]]));
      return { label: this.classes[index], score: row[index], known_words: known[i],
               probabilities: named };
    });
  }

  /** Check the bundle's reference texts: ids equal, every class's probability within its
   * tolerance. */
  async checkReference() {
    const reviews = this.reference.reviews;
    reviews.forEach(({ text, token_ids: expected }) => {
      const ids = this.tokenizer.encode(text);
      if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
        throw new Error(`This page encodes a reference text differently: ${text.slice(0, 60)}`);
      }
    });
    const probabilities = await this.predictProbabilities(reviews.map((review) => review.text));
    const differences = probabilities.flatMap((row, i) => {
      const expected = reviews[i].probabilities ?? [1 - reviews[i].probability, reviews[i].probability];
      if (expected.length !== row.length) return [Infinity];
      return row.map((p, k) => Math.abs(p - expected[k]));
    });
    const difference = Math.max(...differences);
    if (!(difference <= this.reference.tolerance)) {
      throw new Error(`The model in this page differs from seqnet's by ${difference}.`);
    }
    return { reviews: reviews.length, difference };
  }
}
