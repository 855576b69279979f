// Validates an AsyncAPI document (a file path, or stdin) with @asyncapi/parser: prints each
// diagnostic of severity error as JSON and exits 1 if there is any, else prints "valid".
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const text = readFileSync(process.argv[2] ?? 0, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of errors) console.log(JSON.stringify({ code: d.code, message: d.message, path: d.path }));
if (!document || errors.length) process.exit(1);
console.log(`valid: ${document.channels().length} channels, ${document.operations().length} operations`);
