/**
 * The example commands of a Markdown file's ```sh blocks that start with `command` (a program
 * and maybe its first arguments, e.g. `npx buf curl`), each split into words as sh would split
 * it, without `command`'s own words: tests run what the documentation shows.
 *
 * Only the shell syntax the examples need is understood: words, single quotes (which may span
 * lines), `\` at the end of a line, `#` comments and one command per line. An example of
 * `command` that uses anything else (double quotes, `$`, pipes, redirections) is refused rather
 * than run differently from how a shell would run it.
 */
export function shellExamples(markdown: string, command: string): string[][] {
  const prefix = command.split(' ');
  const examples: string[][] = [];
  for (const block of markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)) {
    for (const { words, unsupported } of splitCommands(block[1] ?? '')) {
      if (!prefix.every((word, i) => words[i] === word)) continue;
      if (unsupported) throw new Error(`unsupported shell syntax ${unsupported} in the example: ${words.join(' ')}`);
      examples.push(words.slice(prefix.length));
    }
  }
  return examples;
}

interface Command {
  words: string[];
  /** The first character this splitter does not interpret as sh would. */
  unsupported?: string;
}

function splitCommands(script: string): Command[] {
  const commands: Command[] = [];
  let command: Command = { words: [] };
  let word: string | undefined;
  const endWord = () => {
    if (word !== undefined) command.words.push(word);
    word = undefined;
  };
  const endCommand = () => {
    endWord();
    if (command.words.length > 0) commands.push(command);
    command = { words: [] };
  };
  for (let i = 0; i < script.length; i++) {
    const c = script.charAt(i);
    if (c === '\\' && script.charAt(i + 1) === '\n') {
      i++; // a continued line
    } else if (c === '\n') {
      endCommand();
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '#' && word === undefined) {
      const end = script.indexOf('\n', i);
      i = (end < 0 ? script.length : end) - 1; // the newline still ends the command
    } else if (c === "'") {
      const end = script.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote in: ${script.slice(i, i + 80)}`);
      word = (word ?? '') + script.slice(i + 1, end);
      i = end;
    } else {
      if ('"$`\\|&;<>()*?[]{}~'.includes(c)) command.unsupported ??= c;
      word = (word ?? '') + c;
    }
  }
  endCommand();
  return commands;
}
