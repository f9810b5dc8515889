// The connector's setup form: spec.json rendered with react-jsonschema-form, laid out by the rules
// the Airbyte webapp follows (one card per group, required and always_show fields first and then by
// order, other optional fields in a collapsed "Optional fields" section, secrets as password
// inputs, pattern_descriptor as the format hint and in the error message).
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";
import spec from "../../../spec.json";

const schema = spec.connectionSpecification;

/** uiSchema for one property: secrets masked, the format hint shown with the field, and a oneOf's
 * discriminator (a `const` in each option) hidden, as the option is chosen from the dropdown. */
function uiFor(property) {
  const ui = {};
  if (property.airbyte_secret) ui["ui:widget"] = "password";
  if (property.const !== undefined) ui["ui:widget"] = "hidden";
  if (property.pattern_descriptor) ui["ui:help"] = `Format: ${property.pattern_descriptor}`;
  if (property.properties || property.oneOf) {
    for (const variant of [property, ...(property.oneOf || [])]) {
      for (const [name, inner] of Object.entries(variant.properties || {})) {
        ui[name] = { ...(ui[name] || {}), ...uiFor(inner) };
      }
    }
  }
  return ui;
}

const uiSchema = Object.fromEntries(
  Object.entries(schema.properties).map(([name, property]) => [name, uiFor(property)]),
);

/** Airbyte's order inside a card: by `order`, then fields without one by name. */
function byOrder(a, b) {
  const [oa, ob] = [a.property.order, b.property.order];
  if (oa !== undefined && ob !== undefined) return oa - ob;
  if (oa !== undefined) return -1;
  if (ob !== undefined) return 1;
  return a.name.localeCompare(b.name);
}

/** The cards of the top-level form: the spec's groups in their order, then ungrouped fields. */
function cards(fields) {
  const required = new Set(schema.required || []);
  const entries = fields.map((field) => ({
    ...field,
    property: schema.properties[field.name] || {},
    required: required.has(field.name),
  }));
  const ids = (schema.groups || []).map((g) => g.id);
  const titled = Object.fromEntries((schema.groups || []).map((g) => [g.id, g.title]));
  const result = ids.map((id) => ({ id, title: titled[id], fields: entries.filter((e) => e.property.group === id) }));
  for (const entry of entries.filter((e) => !ids.includes(e.property.group))) {
    result.push({ id: `field-${entry.name}`, title: undefined, fields: [entry] });
  }
  return result.filter((card) => card.fields.length > 0);
}

function Card({ card }) {
  const shown = card.fields.filter((f) => f.required || f.property.always_show).sort(byOrder);
  const optional = card.fields.filter((f) => !(f.required || f.property.always_show)).sort(byOrder);
  return (
    <section className="card" data-group={card.id}>
      {card.title && <h2>{card.title}</h2>}
      {shown.map((f) => (
        <div key={f.name}>{f.content}</div>
      ))}
      {optional.length > 0 && (
        <details className="optional">
          <summary>Optional fields</summary>
          {optional.map((f) => (
            <div key={f.name}>{f.content}</div>
          ))}
        </details>
      )}
    </section>
  );
}

/** Descriptions may hold links: the Airbyte UI renders them as HTML. */
function DescriptionFieldTemplate({ description, id }) {
  if (!description) return null;
  return typeof description === "string" ? (
    <div id={id} className="field-description" dangerouslySetInnerHTML={{ __html: description }} />
  ) : (
    <div id={id} className="field-description">{description}</div>
  );
}

/** The root object is laid out in cards; nested objects keep RJSF's own layout. */
function ObjectFieldTemplate(props) {
  if (props.idSchema.$id !== "root") {
    return (
      <fieldset id={props.idSchema.$id}>
        {props.title && <legend>{props.title}</legend>}
        {props.properties.map((p) => (
          <div key={p.name}>{p.content}</div>
        ))}
      </fieldset>
    );
  }
  return (
    <div className="cards">
      {cards(props.properties).map((card) => (
        <Card key={card.id} card={card} />
      ))}
    </div>
  );
}

/** A pattern error says the format in words when the spec gives one, as the Airbyte UI does. */
function transformErrors(errors) {
  return errors.map((error) => {
    if (error.name !== "pattern") return error;
    const name = error.property.replace(/^\./, "").split(".")[0];
    const descriptor = schema.properties[name]?.pattern_descriptor;
    return descriptor ? { ...error, message: `must have the format: ${descriptor}`, stack: `${name} must have the format: ${descriptor}` } : error;
  });
}

function App() {
  const [submitted, setSubmitted] = useState(null);
  return (
    <main>
      <h1>Set up the destination: Mailchimp</h1>
      <Form
        schema={schema}
        uiSchema={{ ...uiSchema, "ui:submitButtonOptions": { submitText: "Set up destination" } }}
        validator={validator}
        templates={{ ObjectFieldTemplate, DescriptionFieldTemplate }}
        transformErrors={transformErrors}
        showErrorList={false}
        noHtml5Validate
        onSubmit={({ formData }) => setSubmitted(formData)}
        onError={() => setSubmitted(null)}
      />
      {submitted && <pre id="submitted">{JSON.stringify(submitted)}</pre>}
    </main>
  );
}

createRoot(document.getElementById("app")).render(<App />);
