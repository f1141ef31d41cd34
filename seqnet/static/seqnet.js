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

/** The exported model with its tokenizer: probabilities, labels and scores for raw reviews. */
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
  }

  /** Probability that each review is positive, in order. */
  async predictProbabilities(texts) {
    const length = this.tokenizer.spec.sequence_length;
    const probabilities = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      const batch = texts.slice(start, start + BATCH_SIZE);
      const ids = new Int32Array(batch.length * length);
      batch.forEach((text, row) => ids.set(this.tokenizer.encode(text), row * length));
      const input = new this.ort.Tensor("int32", ids, [batch.length, length]); // (batch, 400)
      const outputs = await this.session.run({ [this.reference.input.name]: input });
      probabilities.push(...outputs[this.reference.output.name].data); // (batch, 1) flat
    }
    return probabilities;
  }

  /** `{label, score}` per review, as `seqnet predict` and `seqnet serve` give them. */
  async predict(texts) {
    const probabilities = await this.predictProbabilities(texts);
    return probabilities.map((probability) =>
      probability >= DECISION_THRESHOLD
        ? { label: "positive", score: probability }
        : { label: "negative", score: 1 - probability },
    );
  }

  /** Check the bundle's reference reviews: ids equal, probabilities within its tolerance. */
  async checkReference() {
    const reviews = this.reference.reviews;
    reviews.forEach(({ text, token_ids: expected }) => {
      const ids = this.tokenizer.encode(text);
      if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
        throw new Error(`This page encodes a reference review differently: ${text.slice(0, 60)}`);
      }
    });
    const probabilities = await this.predictProbabilities(reviews.map((review) => review.text));
    const difference = Math.max(
      ...probabilities.map((probability, i) => Math.abs(probability - reviews[i].probability)),
    );
    if (!(difference <= this.reference.tolerance)) {
      throw new Error(`The model in this page differs from seqnet's by ${difference}.`);
    }
    return { reviews: reviews.length, difference };
  }
}
