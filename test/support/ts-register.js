'use strict';
/**
 * Lets a plain `node` child process run croot's TypeScript sources, for tests
 * that must run code in a process of their own (e.g. inside a private PID
 * namespace): `node -r test/support/ts-register.js some-scenario.ts`.
 * Each .ts file is transpiled on require with TypeScript's own
 * transpileModule (no type check: Jest's run and tsc do that), and the
 * sources' `.js` import specifiers resolve to their `.ts` files.
 */
const fs = require('node:fs');
const Module = require('node:module');
const ts = require('typescript');

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveTs(request, parent, ...rest) {
  try {
    return resolve.call(this, request, parent, ...rest);
  } catch (err) {
    if (request.startsWith('.') && request.endsWith('.js')) return resolve.call(this, `${request.slice(0, -3)}.ts`, parent, ...rest);
    throw err;
  }
};

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  sourceMap: false,
};

require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions, fileName: filename });
  module._compile(outputText, filename);
};

require('reflect-metadata');
