// Types of hearth's browser module (hearth.js): `import hearth from './hearth.js'`, or
// `window.hearth` once it has loaded.

export interface LoadProgress {
  /** 'read': bytes arriving (downloaded, or read from a file or this browser's copy; a file
   * read a range at a time goes to the GPU as it is read); 'keep': the download is being
   * written to this browser's copy, which is then read; 'upload': a download held whole (from a
   * server that does not answer ranges, when not kept) goes to the GPU. */
  phase: 'read' | 'upload' | 'keep' | 'done';
  /** Bytes read so far. */
  loaded: number;
  /** Bytes of the file (0 when the server does not say). */
  total: number;
  /** Where the bytes come from: a download, this browser's kept copy, or a picked file. */
  from: 'network' | 'cache' | 'file';
}

export interface LoadOptions {
  /** Context in tokens (0: the model's, at most 4096). */
  ctx?: number;
  /** How the KV cache stores keys and values. */
  kvType?: 'f16' | 'q8_0' | 'q4_0' | 'f32';
  /** Keep a downloaded model in this browser for the next load (default true). */
  keep?: boolean;
}

/** The loaded model, as the engine describes it. */
export interface ModelInfo {
  name?: string;
  file: string;
  architecture: string;
  parameters: number;
  fileBytes: number;
  weightBytes: number;
  sessionBytes: number;
  context: number;
  chatTemplate: boolean;
  from: 'network' | 'cache' | 'file';
  /** The model is kept in this browser (it was, or now is). */
  kept: boolean;
  /** Why a download was not kept: the space it needs and what to free. */
  notKept?: string;
  /** Seconds from the call to the model being ready. */
  loadSeconds: number;
  /** The wasm heap's size after the load (its peak): a file is read a range at a time and
   * never held whole, unless it is a download not kept from a server that ignores ranges. */
  heapBytes: number;
  [key: string]: unknown;
}

/** A model kept in this browser. */
export interface KeptModel {
  url: string;
  name: string;
  bytes: number;
  /** When it was kept (ISO 8601). */
  savedAt: string | null;
}

export interface Message {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
}

export interface GenerateOptions {
  maxTokens?: number;
  /** 0: greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  /** No chat template: the prompt goes in as it is. */
  raw?: boolean;
  system?: string;
  /** The answer is JSON valid under this schema. */
  jsonSchema?: object;
  /** A grammar in llguidance's Lark syntax. */
  grammar?: string;
}

export interface Token {
  /** The token's id (null for text held back until the end, or from a server). */
  id: number | null;
  text: string;
  /** The text is the model's reasoning, not its answer. */
  reasoning?: boolean;
}

export interface Stats {
  promptTokens: number;
  promptTokensPerSecond: number;
  generated: number;
  decodeTokensPerSecond: number;
  /** Why it stopped: 'end', 'length' or 'stopped' (on a server: OpenAI's finish reason). */
  stop: string;
  [key: string]: unknown;
}

export interface ChatCompletionRequest {
  messages: Message[];
  model?: string;
  stream?: boolean;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  n?: 1;
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: object; strict?: boolean } };
}

export interface ChatCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string; reasoning_content?: string }; logprobs: null; finish_reason: 'stop' | 'length' }[];
  usage: ChatCompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string; reasoning_content?: string }; logprobs: null; finish_reason: 'stop' | 'length' | null }[];
  /** On the last chunk. */
  usage?: ChatCompletionUsage;
}

export interface Hearth {
  /** Streams a GGUF into the engine: a URL (absolute or relative to the page), a Hugging Face
   * file as `owner/repo/file.gguf` or `hf:owner/repo/file.gguf[@revision]`, or a File. A kept
   * copy is read from disk; refused early when it cannot run here. */
  load(source: string | URL | Blob, onProgress?: (progress: LoadProgress) => void, options?: LoadOptions): Promise<ModelInfo>;
  /** Tokens after a prompt (one user turn) or a conversation; leaving the loop stops it. */
  generate(prompt: string | Message[], options?: GenerateOptions): AsyncGenerator<Token>;
  adapterInfo(): Promise<Record<string, unknown>>;
  /** Figures of the last generation. */
  stats(): Stats | null;
  /** Forgets the conversation kept in the KV cache. */
  reset(): Promise<void>;
  /** Why this browser cannot run hearth (what to do), or null. */
  webgpuProblem(): Promise<string | null>;
  /** The model's name where the page came from `hearth serve --web`, else null. */
  server(): Promise<string | null>;
  /** The key sent to that server where it was started with `--api-key` (kept in this browser;
   * an empty key forgets it). */
  setApiKey(key: string): void;
  /** The models kept in this browser (Cache Storage). */
  models: {
    list(): Promise<KeptModel[]>;
    delete(url: string): Promise<boolean>;
    /** What this site stores and may store here, in bytes (null where the browser does not say). */
    storage(): Promise<{ usage: number | null; quota: number | null }>;
  };
  chat: {
    completions: {
      create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
}

export function webgpuProblem(): Promise<string | null>;

declare const hearth: Hearth;
export default hearth;

declare global {
  interface Window {
    hearth: Hearth;
  }
}
