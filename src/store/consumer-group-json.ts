import type { ConsumerGroupDefinition, ConsumerGroupSettings, Position } from './port';

/** What both stores keep of a group's definition as one JSON text (positions as decimal strings). */
interface DefinitionJson {
  subtree: { path: string; descendants: boolean };
  eventTypes: string[];
  settings: ConsumerGroupSettings;
  startPosition: string;
}

/** The part of a definition the stores keep as JSON (the name, times and revision are columns or attributes). */
export type DefinitionFields = Pick<ConsumerGroupDefinition, 'subtree' | 'eventTypes' | 'settings' | 'startPosition'>;

export function definitionToJson(definition: DefinitionFields): string {
  const json: DefinitionJson = {
    subtree: definition.subtree,
    eventTypes: definition.eventTypes,
    settings: definition.settings,
    startPosition: definition.startPosition.toString(),
  };
  return JSON.stringify(json);
}

export function definitionFromJson(text: string): DefinitionFields & { startPosition: Position } {
  const json = JSON.parse(text) as DefinitionJson;
  return { subtree: json.subtree, eventTypes: json.eventTypes, settings: json.settings, startPosition: BigInt(json.startPosition) };
}
